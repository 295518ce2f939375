"""Pictures for the lessons: the computational graph, im2col, gradient norms, kernel timings,
a confusion matrix and a grid of images.

Every function builds a ``matplotlib.figure.Figure`` (never through ``pyplot``, so a
script or a test opens no window and leaves no global state behind), returns it, and,
given ``path``, also writes it as a PNG.  :func:`save_or_show` is the one place that
decides what happens to a finished figure: in a notebook it is drawn inline, elsewhere
it is written to a PNG file.
"""
import io
import os
import sys

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, Rectangle

from ..autograd import topological_order
from ..backend import numpy_kernels
from ..backend.shapes import conv_output_size
from ..tensor import Tensor

# One colour per role, shared by all pictures.
LEAF_COLOR = "#cfe2f3"        # tensors the user made (inputs, weights)
CONSTANT_COLOR = "#eeeeee"    # tensors that take no gradient
RESULT_COLOR = "#d9ead3"      # tensors made by an op
OP_COLOR = "#fce5cd"          # the ops (Functions)
HIGHLIGHT_COLOR = "tab:red"
SERIES_COLORS = ("tab:red", "tab:blue", "tab:green", "tab:orange", "tab:purple", "tab:brown")


# --------------------------------------------------------------------------- figures
def in_notebook():
    """True inside a Jupyter kernel (where figures are drawn inline).

    Asked of the running IPython shell, not of the imported modules: a script or a test
    that merely imports ``ipykernel`` (to start a kernel, say) is not a notebook.
    """
    if "IPython" not in sys.modules:
        return False
    shell = sys.modules["IPython"].get_ipython()
    return getattr(shell, "kernel", None) is not None


def _png_bytes(figure):
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def _register_inline_display():
    """Teach the notebook to draw a bare ``Figure`` (one not made by pyplot) as a PNG."""
    from IPython import get_ipython

    shell = get_ipython()
    if shell is not None:
        shell.display_formatter.formatters["image/png"].for_type(Figure, _png_bytes)


def new_figure(width, height):
    """An empty figure of ``width`` x ``height`` inches that can be drawn without a display.

    In a notebook, a cell that ends with the figure shows it inline.
    """
    figure = Figure(figsize=(width, height), layout="constrained")
    if in_notebook():
        _register_inline_display()
    else:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        FigureCanvasAgg(figure)
    return figure


def _save(figure, path):
    if path is not None:
        directory = os.path.dirname(os.fspath(path))
        if directory:
            os.makedirs(directory, exist_ok=True)
        figure.savefig(path, dpi=110)
    return figure


def save_or_show(figure, path=None):
    """Show ``figure`` inline in a notebook; elsewhere write it to ``path`` as a PNG.

    In a notebook the figure is displayed, and also saved when ``path`` is given.
    Outside a notebook ``path`` defaults to ``"<figure label>.png"`` (or ``figure.png``)
    in the current folder.  Returns the path written, or None when nothing was saved.
    """
    if in_notebook():
        from IPython.display import display
        _register_inline_display()
        display(figure)
        if path is None:
            return None
    elif path is None:
        path = (figure.get_label() or "figure") + ".png"
    _save(figure, path)
    return os.fspath(path)


# --------------------------------------------------------------------------- the graph
def _tensor_label(tensor, names, index):
    name = names.get(id(tensor), f"t{index}")
    lines = [name, "x".join(str(size) for size in tensor.shape) or "scalar"]
    if tensor.size == 1:
        lines[1] = f"= {tensor.item():.4g}"
    if tensor.grad is not None and tensor.grad.size == 1:
        lines.append(f"grad {tensor.grad.item():.4g}")
    elif tensor.grad is not None:
        lines.append("grad " + "x".join(str(size) for size in tensor.grad.shape))
    return "\n".join(lines)


def graph_nodes(root):
    """The graph behind ``root`` as drawable nodes, inputs before outputs.

    Returns ``(tensors, ops)``: ``tensors`` lists every tensor in the order of
    :func:`tinyres.autograd.topological_order`, preceded by the constant tensors
    (no gradient) that ops read; ``ops`` maps ``id(output tensor)`` to
    ``(op name, [input tensors])`` for every tensor made by a recorded op.
    """
    order = topological_order(root)
    constants, seen = [], {id(t) for t in order}
    ops = {}
    for tensor in order:
        ctx = tensor._ctx
        if ctx is None:
            continue
        inputs = [t for t in ctx.inputs if isinstance(t, Tensor)]
        ops[id(tensor)] = (ctx.function.__name__, inputs)
        for t in inputs:
            if id(t) not in seen:
                seen.add(id(t))
                constants.append(t)
    return constants + order, ops


def _graph_layout(tensors, ops):
    """Columns and rows of every node: ``{("tensor" | "op", id(output)): (column, row)}``.

    Columns: every tensor sits as far right as it can, one column before the first op
    that reads it (two before the reader's output); an op sits just before its output.  Rows: walking back from the
    root (row 0), each op keeps the row of its output, its first computed input
    continues that row, and the other inputs take the nearest free row of their column.
    """
    column, root = {}, tensors[-1]
    for tensor in reversed(tensors):  # readers come later in the list, so they are placed first
        readers = [column[id(t)] - 1 for t in tensors
                   if id(t) in ops and id(t) in column and any(i is tensor for i in ops[id(t)][1])]
        column[id(tensor)] = min(readers) - 1 if readers else (0 if tensor is root else -2)
    shift = min(column.values())
    column = {key: value - shift for key, value in column.items()}
    row, taken = {id(tensors[-1]): 0}, {column[id(tensors[-1])]: {0}}

    def free_row(col, wanted, offsets):
        used = taken.setdefault(col, set())
        for offset in offsets:
            if wanted + offset not in used:
                used.add(wanted + offset)
                return wanted + offset
        raise AssertionError("unreachable")

    spread = [0] + [sign * k for k in range(1, 1000) for sign in (1, -1)]
    for tensor in reversed(tensors):
        if id(tensor) not in ops:
            continue
        if id(tensor) not in row:  # an output nobody reads (not the root): any free row
            row[id(tensor)] = free_row(column[id(tensor)], 0, spread)
        here = row[id(tensor)]
        first = True
        for t in ops[id(tensor)][1]:
            if id(t) in row:
                continue
            offsets = spread if (first and id(t) in ops) else spread[1:]
            row[id(t)] = free_row(column[id(t)], here, offsets)
            first = False
    for tensor in tensors:  # tensors the root does not depend on through a traced path
        if id(tensor) not in row:
            row[id(tensor)] = free_row(column[id(tensor)], 0, spread)
    layout = {("tensor", id(t)): (column[id(t)], row[id(t)]) for t in tensors}
    for tensor in tensors:
        if id(tensor) in ops:
            layout[("op", id(tensor))] = (column[id(tensor)] - 1, row[id(tensor)])
    return layout


def draw_graph(root, names=None, title=None, path=None):
    """Draw the computational graph that produced ``root``: tensors as boxes, ops as ovals.

    names: ``{"x": x, "w": w, ...}`` labels for tensors (others are called t0, t1, ...).
    Data flows left to right: each op sits just before its output, and every tensor
    just before the first op that reads it.
    Blue boxes are leaves that want a gradient, grey ones constants, green ones op
    results.  A one-element tensor shows its value, and its gradient once known.

    Draw before ``backward()`` (or call ``backward(retain_graph=True)``): backward
    releases the graph, and a released op no longer knows its inputs.
    """
    names = {id(tensor): name for name, tensor in (names or {}).items()}
    tensors, ops = graph_nodes(root)
    layout = _graph_layout(tensors, ops)
    columns = max(col for col, _ in layout.values()) + 1
    rows = [r for _, r in layout.values()]
    height = max(rows) - min(rows) + 1
    figure = new_figure(max(4.0, 1.15 * columns + 0.6), max(2.0, 0.95 * height + 0.8))
    axes = figure.subplots()
    axes.set_axis_off()
    axes.set_xlim(-0.6, columns - 0.4)
    axes.set_ylim(min(rows) - 0.6, max(rows) + 0.6)
    boxes = {}

    def place(key, text, color, shape):
        x, y = layout[key]
        boxes[key] = axes.text(x, y, text, ha="center", va="center", fontsize=8.5, zorder=3,
                               bbox=dict(boxstyle=shape, facecolor=color, edgecolor="0.3"))

    for index, tensor in enumerate(tensors):
        if id(tensor) in ops:
            color = RESULT_COLOR
            place(("op", id(tensor)), ops[id(tensor)][0], OP_COLOR, "round4,pad=0.4")
        else:
            color = LEAF_COLOR if tensor.requires_grad else CONSTANT_COLOR
        place(("tensor", id(tensor)), _tensor_label(tensor, names, index), color, "square,pad=0.35")
    for tensor in tensors:
        if id(tensor) not in ops:
            continue
        op_key = ("op", id(tensor))
        edges = [(("tensor", id(t)), op_key) for t in ops[id(tensor)][1]]
        for source, target in edges + [(op_key, ("tensor", id(tensor)))]:
            axes.add_patch(FancyArrowPatch(
                layout[source], layout[target], arrowstyle="-|>", mutation_scale=11,
                color="0.35", linewidth=1.0, zorder=2, patchA=boxes[source].get_bbox_patch(),
                patchB=boxes[target].get_bbox_patch(), shrinkA=2, shrinkB=2))
    if title:
        axes.set_title(title)
    return _save(figure, path)


# --------------------------------------------------------------------------- im2col
def draw_im2col(image, kernel_size, stride=1, padding=0, dilation=1, column=0, path=None):
    """im2col on a tiny one-channel image: which pixels land in which column.

    image: (H, W).  Left: the padded image, each pixel numbered (padding shown as 0),
    with the receptive field of output pixel ``column`` (in row-major order) outlined.
    Right: ``im2col``'s (R*S, Ho*Wo) matrix of those numbers, that column outlined;
    it reads the outlined pixels top to bottom in (r, s) order.
    The matrix is computed by :func:`tinyres.backend.numpy_kernels.im2col` itself.
    """
    image = np.asarray(image, dtype=np.float64)
    if image.ndim != 2:
        raise ValueError(f"draw_im2col: image must be (H, W), got shape {image.shape}")
    pair = lambda v: (v, v) if np.isscalar(v) else tuple(v)  # noqa: E731
    kernel_size, stride, padding, dilation = map(pair, (kernel_size, stride, padding, dilation))
    height, width = image.shape
    cols = numpy_kernels.im2col(image[None, None], kernel_size, stride, padding, dilation)
    # the same unfolding of 1-based pixel numbers says where every entry came from
    numbers = np.arange(1, height * width + 1, dtype=np.float64).reshape(1, 1, height, width)
    sources = numpy_kernels.im2col(numbers, kernel_size, stride, padding, dilation).astype(int)
    if not 0 <= column < cols.shape[1]:
        raise ValueError(f"draw_im2col: column must lie in [0, {cols.shape[1]}), got {column}")
    padded = np.pad(image, (padding[0:1] * 2, padding[1:2] * 2))
    padded_numbers = np.pad(numbers[0, 0], (padding[0:1] * 2, padding[1:2] * 2)).astype(int)

    figure = new_figure(3.0 + 0.42 * (padded.shape[1] + cols.shape[1]),
                        1.2 + 0.42 * max(padded.shape[0], cols.shape[0]))
    image_axes, cols_axes = figure.subplots(1, 2, width_ratios=[padded.shape[1], cols.shape[1]])
    image_axes.imshow(padded, cmap="Blues", vmin=min(0, image.min()), vmax=image.max() * 1.6)
    for (row, col), value in np.ndenumerate(padded_numbers):
        image_axes.text(col, row, str(value), ha="center", va="center", fontsize=8,
                        color="0.55" if value == 0 else "black")
    out_w = conv_output_size(width, kernel_size[1], stride[1], padding[1], dilation[1])
    out_row, out_col = divmod(column, out_w)
    for r in range(kernel_size[0]):      # tap (r, s) of output (ho, wo) reads padded pixel
        for s in range(kernel_size[1]):  # (ho*sh + r*dh, wo*sw + s*dw)
            row, col = out_row * stride[0] + r * dilation[0], out_col * stride[1] + s * dilation[1]
            image_axes.add_patch(Rectangle((col - 0.5, row - 0.5), 1, 1, fill=False,
                                           edgecolor=HIGHLIGHT_COLOR, linewidth=2))
    image_axes.set_title(f"padded image {padded.shape[0]}x{padded.shape[1]}\n"
                         f"(receptive field of output ({out_row}, {out_col}))", fontsize=9)
    cols_axes.imshow(np.where(sources == 0, 0, cols), cmap="Blues",
                     vmin=min(0, image.min()), vmax=image.max() * 1.6, aspect="equal")
    for (row, col), value in np.ndenumerate(sources):
        cols_axes.text(col, row, str(value), ha="center", va="center", fontsize=8,
                       color="0.55" if value == 0 else "black")
    cols_axes.add_patch(Rectangle((column - 0.5, -0.5), 1, cols.shape[0], fill=False,
                                  edgecolor=HIGHLIGHT_COLOR, linewidth=2))
    cols_axes.set_title(f"cols = im2col(x): {cols.shape[0]} x {cols.shape[1]}\n"
                        "(rows: kernel taps (r, s); columns: output pixels)", fontsize=9)
    cols_axes.set_yticks(range(cols.shape[0]),
                         [f"({r},{s})" for r in range(kernel_size[0]) for s in range(kernel_size[1])],
                         fontsize=7)
    cols_axes.set_xticks(range(cols.shape[1]), range(cols.shape[1]), fontsize=7)
    image_axes.set_xticks([])
    image_axes.set_yticks([])
    figure.suptitle(f"kernel {kernel_size[0]}x{kernel_size[1]}, stride {stride[0]}, "
                    f"padding {padding[0]}, dilation {dilation[0]}", fontsize=10)
    return _save(figure, path)


# --------------------------------------------------------------------------- gradients
def layer_gradient_norms(model):
    """``[(name, ||dL/dW||), ...]`` for every weight matrix or kernel, input side first.

    Reads ``.grad`` of each parameter with two or more axes (convolutions and the
    final linear layer), in the order ``named_parameters()`` lists them; call it after
    ``loss.backward()``.  A parameter without a gradient counts as 0.
    """
    norms = []
    for name, parameter in model.named_parameters():
        if parameter.ndim < 2:
            continue
        grad = parameter.grad
        norms.append((name, 0.0 if grad is None else float(np.linalg.norm(grad.numpy()))))
    return norms


def plot_gradient_norms(norms, path=None, title=None, log=True):
    """Gradient norm of each layer's weights against its depth, one line per network.

    norms: ``{network name: [(layer name, norm), ...]}`` as from :func:`layer_gradient_norms`
    (or plain lists of norms).  Layer 1 is the input side.  The y axis is logarithmic,
    so a gradient that shrinks by a constant factor per layer shows as a straight line.
    """
    figure = new_figure(7.5, 4)
    axes = figure.subplots()
    for index, (label, values) in enumerate(norms.items()):
        values = [value[1] if isinstance(value, tuple) else value for value in values]
        axes.plot(range(1, len(values) + 1), values, marker="o", markersize=3,
                  color=SERIES_COLORS[index % len(SERIES_COLORS)], label=label)
    if log:
        axes.set_yscale("log")
    axes.set(xlabel="layer (1 = next to the input)", ylabel="||dL/dW|| (gradient norm)",
             title=title or "Gradient norm per layer at initialization")
    axes.grid(alpha=0.3, which="both")
    axes.legend()
    return _save(figure, path)


# --------------------------------------------------------------------------- timings
def plot_kernel_timings(timings, path=None, title=None, unit="ms", log=True):
    """Grouped horizontal bars: one group per case, one bar per implementation.

    timings: ``{case label: {implementation: time}}``, e.g.
    ``{"conv2d fwd": {"numpy": 3.1, "numba": 1.2, "torch": 0.4}}``; a missing entry is
    left out.  Shorter is faster; the x axis is logarithmic by default.
    """
    cases = list(timings)
    implementations = []
    for values in timings.values():
        implementations += [name for name in values if name not in implementations]
    height = 0.8 / max(1, len(implementations))
    figure = new_figure(9, 1.3 + 0.25 * len(cases) * max(2, len(implementations)))
    axes = figure.subplots()
    for index, name in enumerate(implementations):
        rows = [row for row, case in enumerate(cases) if name in timings[case]]
        values = [timings[cases[row]][name] for row in rows]
        positions = [row + (index - (len(implementations) - 1) / 2) * height for row in rows]
        bars = axes.barh(positions, values, height=height * 0.95, label=name,
                         color=SERIES_COLORS[index % len(SERIES_COLORS)])
        axes.bar_label(bars, [f"{value:.0f}" if value >= 100 else f"{value:.3g}" for value in values],
                       padding=2, fontsize=7)
    axes.set_yticks(range(len(cases)), cases)
    axes.invert_yaxis()
    if log:
        axes.set_xscale("log")
    axes.margins(x=0.15)
    axes.set(xlabel=f"time ({unit}, shorter is faster)", title=title or "Kernel timings")
    axes.grid(alpha=0.3, axis="x", which="both")
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    return _save(figure, path)


# --------------------------------------------------------------------------- results
def confusion_matrix(labels, predictions, num_classes):
    """counts[i, j] = how many samples of true class i were predicted as class j."""
    counts = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(counts, (np.asarray(labels), np.asarray(predictions)), 1)
    return counts


def plot_confusion_matrix(labels, predictions, classes, path=None, title=None):
    """The confusion matrix as a heat map with counts: rows true class, columns prediction."""
    counts = confusion_matrix(labels, predictions, len(classes))
    figure = new_figure(0.5 * len(classes) + 2.2, 0.5 * len(classes) + 1.6)
    axes = figure.subplots()
    picture = axes.imshow(counts, cmap="Blues")
    for (row, col), value in np.ndenumerate(counts):
        if value:
            axes.text(col, row, str(value), ha="center", va="center", fontsize=8,
                      color="white" if value > counts.max() / 2 else "black")
    axes.set_xticks(range(len(classes)), classes)
    axes.set_yticks(range(len(classes)), classes)
    accuracy = np.trace(counts) / max(1, counts.sum())
    axes.set(xlabel="predicted class", ylabel="true class",
             title=title or f"Confusion matrix (accuracy {100 * accuracy:.1f}%)")
    figure.colorbar(picture, ax=axes, shrink=0.8)
    return _save(figure, path)


def show_images(images, titles=None, columns=8, path=None, title=None):
    """A grid of images (N, C, H, W) or (N, H, W), with an optional title under each."""
    images = np.asarray(images)
    if images.ndim == 4:
        images = images.transpose(0, 2, 3, 1)
        if images.shape[-1] == 1:
            images = images[..., 0]
    count = len(images)
    if count == 0:
        raise ValueError("show_images: no images to show")
    columns = min(columns, count)
    rows = -(-count // columns)
    figure = new_figure(1.3 * columns, 1.45 * rows + (0.4 if title else 0))
    grid = np.atleast_1d(figure.subplots(rows, columns, squeeze=False).ravel())
    for index, axes in enumerate(grid):
        axes.set_axis_off()
        if index >= count:
            continue
        axes.imshow(images[index], cmap="gray_r" if images[index].ndim == 2 else None)
        if titles is not None:
            axes.set_title(titles[index], fontsize=8)
    if title:
        figure.suptitle(title)
    return _save(figure, path)
