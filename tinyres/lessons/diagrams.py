"""Diagrams read off tinyres's own objects: residual blocks with their shortcuts, and
overlapping max-pooling windows.

A block diagram is drawn from a block instance (:mod:`tinyres.models.blocks`): its layers,
their kernel sizes, channels and strides, and its shortcut, with every tensor's shape
worked out by :func:`tinyres.backend.shapes.conv_output_size`, so the picture cannot
disagree with the code.  The pooling picture runs the NumPy reference kernels on a tiny
image and shows what its backward pass must do where windows overlap.

Like :mod:`tinyres.lessons.pictures`, every function returns a ``matplotlib`` figure and,
given ``path``, also writes it as a PNG.
"""
import numpy as np
from matplotlib.patches import FancyArrowPatch, Rectangle

from ..backend import numpy_kernels
from ..backend.shapes import conv_output_size
from ..functional.conv import conv_padding
from .pictures import SERIES_COLORS, _save, new_figure

__all__ = ["block_steps", "draw_block_on", "draw_max_pool_windows", "draw_residual_block",
           "draw_residual_blocks", "draw_shortcut_options", "pool_windows", "shortcut_step"]

# One colour per kind of layer, shared by every block diagram.
LAYER_COLORS = {"conv": "#cfe2f3", "norm": "#d9ead3", "relu": "#fce5cd",
                "shortcut": "#f4cccc", "tensor": "#ffffff", "branch": "#e8e0f4"}
SHORTCUT_TITLES = {"identity": "identity", "zero_pad": "zero padding",
                   "projection": "projection", "none": "no shortcut (plain)"}


# --------------------------------------------------------------------------- blocks
def _shape_text(shape):
    return "x".join(str(size) for size in shape)


def _conv_step(conv, shape):
    """A convolution's label and output shape (C, H, W) for an input of ``shape``."""
    (kernel_h, kernel_w), (stride_h, stride_w) = conv.kernel_size, conv.stride
    # padding may be "same" or "valid", as PyTorch allows: the extra row or column after
    # the image that "same" adds for an even total counts as one more input row or column
    (pad_h, pad_w), (extra_h, extra_w) = conv_padding(
        "Conv2d", conv.padding, conv.kernel_size, conv.stride, conv.dilation)
    height = conv_output_size(shape[1] + extra_h, kernel_h, stride_h, pad_h, conv.dilation[0])
    width = conv_output_size(shape[2] + extra_w, kernel_w, stride_w, pad_w, conv.dilation[1])
    label = f"{kernel_h}x{kernel_w} conv, {conv.in_channels} -> {conv.out_channels}"
    if stride_h > 1 or stride_w > 1:
        label += f", stride {stride_h}"
    return label, (conv.out_channels, height, width)


def block_steps(block, input_shape):
    """The residual branch of ``block`` in the order its forward runs it.

    Returns ``[(label, kind, output shape), ...]`` with ``kind`` one of ``"conv"``,
    ``"norm"``, ``"relu"``; shapes are (C, H, W).  A post-activation block (``BasicBlock``,
    ``Bottleneck``) runs conv -> BN -> ReLU per layer, without the last ReLU (it follows
    the addition); a pre-activation block runs BN -> ReLU -> conv.
    """
    convs = [getattr(block, f"conv{i}") for i in range(1, 10) if hasattr(block, f"conv{i}")]
    norms = [getattr(block, f"bn{i}") for i in range(1, 10) if hasattr(block, f"bn{i}")]
    steps, shape = [], tuple(input_shape)
    for index, (conv, norm) in enumerate(zip(convs, norms)):
        label, conv_shape = _conv_step(conv, shape)
        if block.preactivation:
            steps += [(f"batch norm ({norm.num_features})", "norm", shape),
                      ("ReLU", "relu", shape), (label, "conv", conv_shape)]
        else:
            steps += [(label, "conv", conv_shape),
                      (f"batch norm ({norm.num_features})", "norm", conv_shape)]
            if index < len(convs) - 1:
                steps.append(("ReLU", "relu", conv_shape))
        shape = conv_shape
    return steps


def shortcut_step(block, input_shape):
    """The shortcut of ``block`` as ``(kind, label, output shape)``; kind as ``block.shortcut_kind``.

    ``"identity"`` and ``"none"`` (a plain block) have no layer to draw.
    """
    kind, shape = block.shortcut_kind, tuple(input_shape)
    if kind == "zero_pad":
        stride = block.stride
        out_shape = (block.out_planes, -(-shape[1] // stride), -(-shape[2] // stride))
        extra = block.out_planes - shape[0]
        return kind, (f"every {stride}nd pixel,\n+ {extra} zero channels"
                      if stride > 1 else f"+ {extra} zero channels"), out_shape
    if kind == "projection":
        conv = block.downsample[0]
        _, out_shape = _conv_step(conv, shape)
        stride = f", stride {conv.stride[0]}" if conv.stride[0] > 1 else ""
        return kind, (f"1x1 conv{stride}\n{conv.in_channels} -> {conv.out_channels}, "
                      "batch norm"), out_shape
    return kind, kind, shape


def _box(axes, x, y, text, color, fontsize=9, width=None):
    box = axes.text(x, y, text, ha="center", va="center", fontsize=fontsize, zorder=3,
                    bbox=dict(boxstyle="round,pad=0.45", facecolor=color, edgecolor="0.35"))
    if width:
        box.get_bbox_patch().set_width(width)
    return box


def _arrow(axes, start, end, patch_a=None, patch_b=None, label=None, connection="arc3"):
    axes.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=11, color="0.3",
                                   linewidth=1.1, zorder=2, patchA=patch_a, patchB=patch_b,
                                   shrinkA=1, shrinkB=1, connectionstyle=connection))
    if label:
        axes.text(start[0] + 0.07, (start[1] + end[1]) / 2, label, fontsize=9, color="0.35",
                  ha="left", va="center")


def draw_block_on(axes, block, input_shape, title=None, compact=False):
    """Draw ``block`` on ``axes``: input at the top, the residual branch down the middle,
    the shortcut on the right, the addition (and the ReLU after it) at the bottom.

    input_shape: (C, H, W) of the block's input, which sets the shapes written on the
    arrows.  compact: the branch as one box (for comparing shortcuts side by side).
    """
    steps = block_steps(block, input_shape)
    kind, shortcut_label, shortcut_shape = shortcut_step(block, input_shape)
    out_shape = steps[-1][2]
    if compact:   # one box naming the kernels, the channels and the stride of the branch
        kernels = [step[0].split(" ")[0] for step in steps if step[1] == "conv"]
        stride = block.stride
        label = (f"F(x): {' + '.join(kernels)} convs\n{input_shape[0]} -> {out_shape[0]}"
                 + (f", stride {stride}" if stride > 1 else ""))
        steps = [(label, "branch", out_shape)]
    rows = [("x", "tensor", tuple(input_shape))] + steps
    adds = not block.plain
    rows += [("+", "add", out_shape)] if adds else []
    rows += [] if block.preactivation else [("ReLU", "relu", out_shape)]
    spacing = 1.3 if compact else 1.0
    top = 0.0
    positions = [top - spacing * index for index in range(len(rows))]
    output_y = positions[-1] - spacing
    boxes = []
    for (label, step_kind, _), y in zip(rows, positions):
        if step_kind == "add":
            boxes.append(axes.text(0, y, "+", ha="center", va="center", fontsize=13, zorder=3,
                                   bbox=dict(boxstyle="circle,pad=0.15", facecolor="white",
                                             edgecolor="0.35")))
        else:
            boxes.append(_box(axes, 0, y, label, LAYER_COLORS[step_kind], fontsize=10))
    output = axes.text(0, output_y, "y", ha="center", va="center", fontsize=10, zorder=3,
                       bbox=dict(boxstyle="round,pad=0.45", facecolor="white", edgecolor="0.35"))
    chain = boxes + [output]
    shapes = [row[2] for row in rows]
    for index in range(len(chain) - 1):
        start = (0, positions[index])
        end = (0, positions[index + 1] if index + 1 < len(positions) else output_y)
        _arrow(axes, start, end, chain[index].get_bbox_patch(), chain[index + 1].get_bbox_patch(),
               label=_shape_text(shapes[index]) if rows[index][1] != "add" else None)
    if adds:
        add_y = positions[rows.index(("+", "add", out_shape))]
        side = 3.4 if compact else 1.45     # the shortcut runs clear of the widest branch box
        right_bottom = (side, add_y)
        axes.plot([0.28, side], [positions[0], positions[0]], color="0.3", linewidth=1.1, zorder=1)
        if kind in ("zero_pad", "projection"):
            middle = (positions[0] + add_y) / 2
            _box(axes, side, middle, shortcut_label, LAYER_COLORS["shortcut"], fontsize=10)
            axes.plot([side, side], [positions[0], middle], color="0.3", linewidth=1.1, zorder=1)
            axes.plot([side, side], [middle, add_y], color="0.3", linewidth=1.1, zorder=1)
            axes.text(side, middle - 0.62 * spacing, _shape_text(shortcut_shape), fontsize=9,
                      color="0.35", ha="center", va="center", zorder=3,
                      bbox=dict(boxstyle="square,pad=0.1", facecolor="white", edgecolor="none"))
        else:
            axes.plot([side, side], [positions[0], add_y], color="0.3", linewidth=1.1, zorder=1)
            axes.text(side + 0.08, (positions[0] + add_y) / 2, "identity", rotation=90,
                      fontsize=9, color="0.3", ha="left", va="center")
        _arrow(axes, right_bottom, (0, add_y), patch_b=boxes[rows.index(("+", "add", out_shape))]
               .get_bbox_patch())
    axes.set_xlim(-1.8, 5.1 if compact else 2.6)
    axes.set_ylim(output_y - 0.6, top + 0.6)
    axes.set_axis_off()
    if title:
        axes.set_title(title, fontsize=11)
    return axes


def draw_residual_block(block, input_shape, title=None, path=None):
    """One residual block as a diagram (see :func:`draw_block_on`): layers, shortcut, shapes.

    block: a block of :mod:`tinyres.models.blocks`; input_shape: (C, H, W) of its input.
    """
    figure = new_figure(4.2, 0.75 * (len(block_steps(block, input_shape)) + 4))
    draw_block_on(figure.subplots(), block, input_shape, title=title)
    return _save(figure, path)


def draw_residual_blocks(path=None):
    """The two blocks of He et al. (2016), Fig. 5, side by side, on ImageNet's 56 x 56 stage.

    Left: the basic block of ResNet-18/34 on 64 channels; right: the bottleneck block of
    ResNet-50/101/152, which reduces 256 channels to 64 for its 3 x 3 and expands them back.
    """
    from ..models.blocks import BasicBlock, Bottleneck

    figure = new_figure(9.0, 7.2)
    basic_axes, bottleneck_axes = figure.subplots(1, 2)
    draw_block_on(basic_axes, BasicBlock(64, 64), (64, 56, 56),
                  title="basic block (ResNet-18, -34)")
    draw_block_on(bottleneck_axes, Bottleneck(256, 64), (256, 56, 56),
                  title="bottleneck block (ResNet-50, -101, -152)")
    return _save(figure, path)


def draw_shortcut_options(path=None):
    """Shortcut options A, B and C on the basic blocks of a CIFAR ResNet's second stage.

    Top row: the stage's first block, which halves the resolution and doubles the channels
    (16 -> 32, stride 2), where every option must change the shape of x.  Bottom row: a
    block that keeps the shape, where A and B are the identity and only C projects.
    """
    from ..models.blocks import BasicBlock

    figure = new_figure(11.0, 7.6)
    grid = figure.subplots(2, 3)
    for column, option in enumerate("ABC"):
        for row, (in_planes, stride, shape) in enumerate(((16, 2, (16, 32, 32)),
                                                          (32, 1, (32, 16, 16)))):
            block = BasicBlock(in_planes, 32, stride=stride, shortcut=option)
            where = "first block of a stage" if row == 0 else "any other block"
            draw_block_on(grid[row, column], block, shape, compact=True,
                          title=f"option {option}, {where}\nshortcut: "
                                f"{SHORTCUT_TITLES[block.shortcut_kind]}")
    return _save(figure, path)


# --------------------------------------------------------------------------- pooling
def pool_windows(image, kernel_size, stride):
    """Every max-pooling window of a 2-D ``image`` with its winner.

    Returns ``[(ho, wo, (row, col) of the window's top-left pixel, (row, col) of its
    winner), ...]`` in row-major order of the output, the winner being the first maximum
    as :func:`tinyres.backend.numpy_kernels.max_pool2d_forward` picks it.
    """
    image = np.asarray(image, dtype=np.float64)
    kernel_w = kernel_size[1]
    _, argmax = numpy_kernels.max_pool2d_forward(image[None, None], kernel_size, stride, (0, 0))
    windows = []
    for (ho, wo), tap in np.ndenumerate(argmax[0, 0]):
        corner = (ho * stride[0], wo * stride[1])
        windows.append((ho, wo, corner, (corner[0] + tap // kernel_w, corner[1] + tap % kernel_w)))
    return windows


def draw_max_pool_windows(image, kernel_size=3, stride=2, grad_output=None, path=None):
    """Max pooling with overlapping windows: who wins which window, and where the gradient goes.

    image: (H, W).  grad_output: (Ho, Wo) upstream gradient (default 1, 2, 3, ... so that
    sums can be read off).  Left: the image with each window outlined in its own colour
    and its winner ringed.  Middle: the pooled output, each cell in its window's colour,
    with its gradient.  Right: dL/dx from :func:`tinyres.backend.numpy_kernels.max_pool2d_backward`:
    every window hands its gradient to its winner, and a pixel that wins several windows
    receives the **sum** of their gradients.
    """
    pair = lambda v: (v, v) if np.isscalar(v) else tuple(v)  # noqa: E731
    kernel_size, stride = pair(kernel_size), pair(stride)
    image = np.asarray(image, dtype=np.float64)
    if image.ndim != 2:
        raise ValueError(f"draw_max_pool_windows: image must be (H, W), got shape {image.shape}")
    out, argmax = numpy_kernels.max_pool2d_forward(image[None, None], kernel_size, stride, (0, 0))
    out = out[0, 0]
    if grad_output is None:
        grad_output = np.arange(1, out.size + 1, dtype=np.float64).reshape(out.shape)
    grad_output = np.asarray(grad_output, dtype=np.float64)
    if grad_output.shape != out.shape:
        raise ValueError(f"draw_max_pool_windows: grad_output must be {out.shape}, "
                         f"got {grad_output.shape}")
    dx = numpy_kernels.max_pool2d_backward(grad_output[None, None], argmax, (1, 1, *image.shape),
                                           kernel_size, stride, (0, 0))[0, 0]
    windows = pool_windows(image, kernel_size, stride)
    wins = np.zeros(image.shape, dtype=int)
    for *_, winner in windows:
        wins[winner] += 1
    colors = [SERIES_COLORS[index % len(SERIES_COLORS)] for index in range(len(windows))]

    figure = new_figure(2.4 + 0.6 * (2 * image.shape[1] + out.shape[1]), 2.0 + 0.6 * image.shape[0])
    image_axes, out_axes, grad_axes = figure.subplots(
        1, 3, width_ratios=[image.shape[1], out.shape[1], image.shape[1]])
    for axes, values in ((image_axes, image), (grad_axes, dx)):
        axes.imshow(np.zeros(values.shape), cmap="Greys", vmin=0, vmax=1)
    for (row, col), value in np.ndenumerate(image):
        image_axes.text(col, row, f"{value:g}", ha="center", va="center", fontsize=11)
    for index, ((ho, wo, corner, winner), color) in enumerate(zip(windows, colors)):
        inset = 0.06 + 0.07 * (index % 4)            # nested outlines keep overlaps visible
        image_axes.add_patch(Rectangle(
            (corner[1] - 0.5 + inset, corner[0] - 0.5 + inset), kernel_size[1] - 2 * inset,
            kernel_size[0] - 2 * inset, fill=False, edgecolor=color, linewidth=2))
        ring = 0.36 + 0.07 * (wins[winner] > 1) * (index % 3)
        image_axes.add_patch(Rectangle((winner[1] - ring, winner[0] - ring), 2 * ring, 2 * ring,
                                       fill=False, edgecolor=color, linewidth=1.6, linestyle="--"))
        out_axes.add_patch(Rectangle((wo - 0.5, ho - 0.5), 1, 1, facecolor=color, alpha=0.35))
        out_axes.text(wo, ho, f"{out[ho, wo]:g}\ngrad {grad_output[ho, wo]:g}", ha="center",
                      va="center", fontsize=10)
    out_axes.imshow(np.zeros(out.shape), cmap="Greys", vmin=0, vmax=1, alpha=0.0)
    for (row, col), value in np.ndenumerate(dx):
        shared = wins[row, col] > 1
        grad_axes.text(col, row, f"{value:g}", ha="center", va="center", fontsize=11,
                       fontweight="bold" if shared else "normal",
                       color="tab:red" if shared else ("black" if value else "0.6"))
        if shared:
            grad_axes.add_patch(Rectangle((col - 0.45, row - 0.45), 0.9, 0.9, fill=False,
                                          edgecolor="tab:red", linewidth=2))
    for axes, values in ((image_axes, image), (out_axes, out), (grad_axes, dx)):
        axes.set_xticks(np.arange(values.shape[1] + 1) - 0.5, minor=True)   # pixel borders
        axes.set_yticks(np.arange(values.shape[0] + 1) - 0.5, minor=True)
        axes.grid(which="minor", color="0.85", linewidth=0.8)
        axes.tick_params(which="both", length=0)
        axes.set_xticks([])
        axes.set_yticks([])
    image_axes.set_title(f"x: {kernel_size[0]}x{kernel_size[1]} windows, stride {stride[0]}\n"
                         "(winners ringed)", fontsize=10.5)
    out_axes.set_title("out = max per window\nand its gradient", fontsize=10.5)
    sums = []
    for position in [tuple(int(i) for i in where) for where in np.argwhere(wins > 1)]:
        parts = [f"{grad_output[ho, wo]:g}" for ho, wo, _, winner in windows
                 if tuple(int(i) for i in winner) == position]
        sums.append(f"pixel {position} won {len(parts)}: {' + '.join(parts)} = {dx[position]:g}")
    grad_axes.set_title("dL/dx: each window's gradient goes to its winner"
                        + ("\n" + "; ".join(sums) if sums else ""), fontsize=10.5)
    return _save(figure, path)
