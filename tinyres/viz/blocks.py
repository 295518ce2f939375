"""Residual blocks as diagrams, read off the block objects of :mod:`tinyres.models.blocks`.

A diagram is drawn from a block instance: its layers, their kernel sizes, channels and
strides, and the shortcut its network handed it, with every tensor's shape worked out by
:func:`tinyres.backend.shapes.conv_output_size`, so the picture cannot disagree with the
code.  Every function returns a ``matplotlib`` figure (or axes) and, given ``path``, also
writes it.
"""
from matplotlib.patches import FancyArrowPatch

from .. import nn
from ..backend.shapes import conv_output_size
from ..functional.conv import conv_padding
from ..models.blocks import BasicBlock, Bottleneck, ZeroPadShortcut, make_shortcut
from .figures import new_figure, save

# One colour per kind of layer, shared by every block diagram.
LAYER_COLORS = {"conv": "#cfe2f3", "norm": "#d9ead3", "relu": "#fce5cd",
                "shortcut": "#f4cccc", "tensor": "#ffffff", "branch": "#e8e0f4"}
SHORTCUT_TITLES = {"identity": "identity", "zero_pad": "zero padding",
                   "projection": "projection", "none": "no shortcut (plain)"}


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


def shortcut_kind(block):
    """What the shortcut ``block`` was handed does: identity, zero padding, projection or none.

    Returns ``"identity"``, ``"zero_pad"`` (option A where the shape changes),
    ``"projection"`` (1x1 convolution + batch norm: options B and C) or ``"none"`` (a plain
    block, handed no shortcut).
    """
    shortcut = block.shortcut
    if shortcut is None:
        return "none"
    if isinstance(shortcut, ZeroPadShortcut):
        return "zero_pad"
    if isinstance(shortcut, nn.Identity):
        return "identity"
    return "projection"


def shortcut_step(block, input_shape):
    """The shortcut of ``block`` as ``(kind, label, output shape)``; kind as :func:`shortcut_kind`.

    ``"identity"`` and ``"none"`` (a plain block) have no layer to draw.
    """
    kind, shape = shortcut_kind(block), tuple(input_shape)
    if kind == "zero_pad":
        stride, out_channels = block.shortcut.stride, block.shortcut.out_channels
        out_shape = (out_channels, -(-shape[1] // stride), -(-shape[2] // stride))
        extra = out_channels - shape[0]
        return kind, (f"every {stride}nd pixel,\n+ {extra} zero channels"
                      if stride > 1 else f"+ {extra} zero channels"), out_shape
    if kind == "projection":
        conv = block.shortcut[0]
        _, out_shape = _conv_step(conv, shape)
        stride = f", stride {conv.stride[0]}" if conv.stride[0] > 1 else ""
        return kind, (f"1x1 conv{stride}\n{conv.in_channels} -> {conv.out_channels}, "
                      "batch norm"), out_shape
    return kind, kind, shape


def _block_stride(block):
    """The stride of the block: that of its strided convolution (1 if none is)."""
    convs = [getattr(block, f"conv{i}") for i in range(1, 10) if hasattr(block, f"conv{i}")]
    return max(conv.stride[0] for conv in convs)


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
        stride = _block_stride(block)
        label = (f"F(x): {' + '.join(kernels)} convs\n{input_shape[0]} -> {out_shape[0]}"
                 + (f", stride {stride}" if stride > 1 else ""))
        steps = [(label, "branch", out_shape)]
    rows = [("x", "tensor", tuple(input_shape))] + steps
    adds = block.shortcut is not None
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
    return save(figure, path)


def draw_residual_blocks(path=None):
    """The two blocks of He et al. (2016), Fig. 5, side by side, on ImageNet's 56 x 56 stage.

    Left: the basic block of ResNet-18/34 on 64 channels; right: the bottleneck block of
    ResNet-50/101/152, which reduces 256 channels to 64 for its 3 x 3 and expands them back.
    """
    figure = new_figure(9.0, 7.2)
    basic_axes, bottleneck_axes = figure.subplots(1, 2)
    draw_block_on(basic_axes, BasicBlock(64, 64, shortcut=nn.Identity()), (64, 56, 56),
                  title="basic block (ResNet-18, -34)")
    draw_block_on(bottleneck_axes, Bottleneck(256, 64, shortcut=nn.Identity()), (256, 56, 56),
                  title="bottleneck block (ResNet-50, -101, -152)")
    return save(figure, path)


def draw_shortcut_options(path=None):
    """Shortcut options A, B and C on the basic blocks of a CIFAR ResNet's second stage.

    Top row: the stage's first block, which halves the resolution and doubles the channels
    (16 -> 32, stride 2), where every option must change the shape of x.  Bottom row: a
    block that keeps the shape, where A and B are the identity and only C projects.
    """
    figure = new_figure(11.0, 7.6)
    grid = figure.subplots(2, 3)
    for column, option in enumerate("ABC"):
        for row, (in_planes, stride, shape) in enumerate(((16, 2, (16, 32, 32)),
                                                          (32, 1, (32, 16, 16)))):
            block = BasicBlock(in_planes, 32, stride,
                               shortcut=make_shortcut(option, in_planes, 32, stride))
            where = "first block of a stage" if row == 0 else "any other block"
            draw_block_on(grid[row, column], block, shape, compact=True,
                          title=f"option {option}, {where}\nshortcut: "
                                f"{SHORTCUT_TITLES[shortcut_kind(block)]}")
    return save(figure, path)
