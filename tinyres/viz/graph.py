"""The computational graph behind a tensor, drawn: tensors as boxes, ops as ovals, left to right.

The graph is read through the public ``Tensor.grad_fn`` (the op that made a tensor, with
its inputs) and :func:`tinyres.autograd.topological_order`, the order backward walks it.
"""
from matplotlib.patches import FancyArrowPatch

from ..autograd import topological_order
from ..tensor import Tensor
from .figures import new_figure, save

# One colour per role of a node.
LEAF_COLOR = "#cfe2f3"        # tensors the user made (inputs, weights)
CONSTANT_COLOR = "#eeeeee"    # tensors that take no gradient
RESULT_COLOR = "#d9ead3"      # tensors made by an op
OP_COLOR = "#fce5cd"          # the ops (Functions)


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
        node = tensor.grad_fn
        if node is None:
            continue
        inputs = [t for t in node.inputs if isinstance(t, Tensor)]
        ops[id(tensor)] = (node.function.__name__, inputs)
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
    return save(figure, path)
