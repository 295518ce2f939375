"""The Tensor's own operators as :class:`~tinyres.autograd.Function` subclasses.

Arithmetic, reductions and shape changes.  Each ``backward`` is the derivative of its
``forward`` written right beside it; broadcasting is undone once for all by the graph
walk (:func:`tinyres.autograd.sum_to_shape`), so these only handle their own maths.
Arrays may be NumPy or CuPy: ``xp_of`` picks the module that owns them.
"""
import math
import numbers

from .autograd import Function, Kinks, format_index
from . import backend
from .backend import xp_of


# --------------------------------------------------------------------------- arithmetic
class Add(Function):
    """out = a + b;  da = grad_output, db = grad_output."""

    @staticmethod
    def forward(ctx, a, b):
        return a + b

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output, grad_output


class Sub(Function):
    """out = a - b;  da = grad_output, db = -grad_output."""

    @staticmethod
    def forward(ctx, a, b):
        return a - b

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output, -grad_output


class Mul(Function):
    """out = a * b;  da = grad_output * b, db = grad_output * a."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, grad_output):
        a, b = ctx.saved
        return grad_output * b, grad_output * a


class Div(Function):
    """out = a / b;  da = grad_output / b, db = -grad_output * a / b^2."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a / b

    @staticmethod
    def backward(ctx, grad_output):
        a, b = ctx.saved
        grad_a = grad_output / b
        return grad_a, (-grad_a * a / b) if ctx.needs_input_grad[1] else None


class Neg(Function):
    """out = -a;  da = -grad_output."""

    @staticmethod
    def forward(ctx, a):
        return -a

    @staticmethod
    def backward(ctx, grad_output):
        return -grad_output


class Pow(Function):
    """out = a ** p for a constant exponent p;  da = grad_output * p * a^(p-1)."""

    @staticmethod
    def forward(ctx, a, exponent):
        ctx.save_for_backward(a)
        ctx.exponent = exponent
        return a ** exponent

    @staticmethod
    def backward(ctx, grad_output):
        (a,) = ctx.saved
        return grad_output * ctx.exponent * a ** (ctx.exponent - 1), None


class Exp(Function):
    """out = e^a;  da = grad_output * out."""

    @staticmethod
    def forward(ctx, a):
        out = xp_of(a).exp(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad_output):
        (out,) = ctx.saved
        return grad_output * out


class Log(Function):
    """out = ln(a);  da = grad_output / a."""

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return xp_of(a).log(a)

    @staticmethod
    def backward(ctx, grad_output):
        (a,) = ctx.saved
        return grad_output / a


# --------------------------------------------------------------------------- reductions
def reduced_axes(op, axis, shape):
    """``axis`` of a reduction (None, an int or a sequence) -> a sorted tuple of distinct axes.

    As in PyTorch, a 0-d tensor takes axis 0 or -1 (and reduces nothing).  ``axis=()``
    is refused: NumPy reduces no axis for it and PyTorch every axis, so either answer
    would surprise half the readers; ``axis=None`` reduces them all.
    """
    ndim = len(shape)
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, numbers.Integral) else tuple(axis)
    if not axes:
        raise ValueError(f"{op}: axis=() is ambiguous (NumPy reduces no axis for it, PyTorch "
                         "every axis); pass axis=None to reduce every axis")
    span = max(ndim, 1)
    for a in axes:
        if isinstance(a, bool) or not isinstance(a, numbers.Integral) or not -span <= a < span:
            raise ValueError(f"{op}: axis {a!r} is out of range for a tensor of shape {tuple(shape)}")
    normalized = sorted(a % span for a in axes)
    if len(set(normalized)) < len(normalized):
        raise ValueError(f"{op}: axis {tuple(axes)} names the same axis twice "
                         f"(tensor of shape {tuple(shape)})")
    return tuple(normalized) if ndim else ()


def _keepdims_shape(shape, axes):
    return tuple(1 if i in axes else size for i, size in enumerate(shape))


class Sum(Function):
    """out = sum of a over ``axis``;  da = grad_output broadcast back over the summed axes."""

    @staticmethod
    def forward(ctx, a, axis=None, keepdims=False):
        ctx.axes = reduced_axes("sum", axis, a.shape)
        ctx.shape = a.shape
        return a.sum(axis=ctx.axes, keepdims=keepdims)

    @staticmethod
    def backward(ctx, grad_output):
        grad_output = grad_output.reshape(_keepdims_shape(ctx.shape, ctx.axes))
        return xp_of(grad_output).broadcast_to(grad_output, ctx.shape).copy()


class Mean(Function):
    """out = mean of a over ``axis``;  da = grad_output / (number of values averaged).

    The mean of no values (an axis of size 0) is NaN, as in PyTorch.
    """

    @staticmethod
    def forward(ctx, a, axis=None, keepdims=False):
        ctx.axes = reduced_axes("mean", axis, a.shape)
        ctx.shape = a.shape
        ctx.count = math.prod(a.shape[i] for i in ctx.axes)
        if ctx.count == 0:   # said here, rather than by NumPy's "mean of empty slice" warning
            shape = _keepdims_shape(a.shape, ctx.axes) if keepdims else \
                tuple(size for i, size in enumerate(a.shape) if i not in ctx.axes)
            return xp_of(a).full(shape, math.nan, dtype=a.dtype)
        return a.mean(axis=ctx.axes, keepdims=keepdims)

    @staticmethod
    def backward(ctx, grad_output):
        # an empty mean has no input elements, so its (empty) gradient needs no division
        grad_output = grad_output.reshape(_keepdims_shape(ctx.shape, ctx.axes)) / max(ctx.count, 1)
        return xp_of(grad_output).broadcast_to(grad_output, ctx.shape).copy()


class Max(Function):
    """out = max of a over ``axis``;  da = grad_output shared equally among the tied maxima.

    The maximum of no values is undefined: reducing an axis of size 0 raises, as in PyTorch.
    """

    @staticmethod
    def forward(ctx, a, axis=None, keepdims=False):
        ctx.axes = reduced_axes("max", axis, a.shape)
        empty = [i for i in ctx.axes if a.shape[i] == 0]
        if empty:
            raise ValueError(f"max: the maximum over an axis of size 0 is undefined (axis "
                             f"{empty[0]} of a tensor of shape {tuple(a.shape)})")
        out = a.max(axis=ctx.axes, keepdims=True)
        is_max = a == out
        ctx.save_for_backward(is_max, is_max.sum(axis=ctx.axes, keepdims=True))
        return out if keepdims else out.reshape([s for i, s in enumerate(a.shape) if i not in ctx.axes])

    @staticmethod
    def backward(ctx, grad_output):
        is_max, count = ctx.saved
        grad_output = grad_output.reshape(count.shape)
        return (is_max * (grad_output / count)).astype(grad_output.dtype, copy=False)

    @staticmethod
    def kinks(ctx, inputs, output):
        """Ties: where an input reaches its group's maximum, the set of maxima changes."""
        a, is_max = inputs[0], ctx.saved[0]
        group_max = a.max(axis=ctx.axes, keepdims=True)

        def describe(index):
            maximum = float(xp_of(a).broadcast_to(group_max, a.shape)[index])
            return (f"max's input {format_index(index)} = {float(a[index]):.8g} is within the "
                    f"±eps step of a tie for its group's maximum {maximum:.8g}")
        return Kinks(branch=is_max, describe=describe,
                     advice="make the values that compete for a maximum differ by more than "
                            "eps, or use a smaller eps")


# --------------------------------------------------------------------------- shapes
class Reshape(Function):
    """out = a viewed with another shape;  da = grad_output reshaped back."""

    @staticmethod
    def forward(ctx, a, shape):
        ctx.shape = a.shape
        return a.reshape(shape)

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output.reshape(ctx.shape), None


class Permute(Function):
    """out = a with its axes reordered;  da = grad_output with the inverse order."""

    @staticmethod
    def forward(ctx, a, axes):
        ctx.axes = axes
        return a.transpose(axes)

    @staticmethod
    def backward(ctx, grad_output):
        inverse = [0] * len(ctx.axes)
        for position, axis in enumerate(ctx.axes):
            inverse[axis] = position
        return grad_output.transpose(inverse), None


class GetItem(Function):
    """out = a[index] for basic indexing;  da = zeros with grad_output written at ``index``."""

    @staticmethod
    def forward(ctx, a, index):
        ctx.index, ctx.shape = index, a.shape
        return a[index]

    @staticmethod
    def backward(ctx, grad_output):
        full = xp_of(grad_output).zeros(ctx.shape, dtype=grad_output.dtype)
        full[ctx.index] = grad_output  # basic indexing reaches each element at most once
        return full, None


class MatMul(Function):
    """out = a @ b (batched over leading axes);  da = grad_output @ b^T,  db = a^T @ grad_output."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a @ b

    @staticmethod
    def backward(ctx, grad_output):
        a, b = ctx.saved
        grad_a = grad_output @ b.swapaxes(-1, -2) if ctx.needs_input_grad[0] else None
        grad_b = a.swapaxes(-1, -2) @ grad_output if ctx.needs_input_grad[1] else None
        return grad_a, grad_b

    @staticmethod
    def cost(ctx, inputs, output):
        """2 flops per multiply-add: 2 * output elements * a's last axis; backward as much per gradient wanted."""
        a, b = inputs
        flops = 2 * output.size * a.shape[-1]
        wanted = sum(ctx.needs_input_grad[:2])   # each gradient is one product of that size
        return {"flops": flops, "bytes": a.nbytes + b.nbytes + output.nbytes,
                "backward_flops": wanted * flops,
                "backward_bytes": output.nbytes + wanted * (a.nbytes + b.nbytes)}


class Pad(Function):
    """out = a with zeros added around each axis;  da = the interior of grad_output."""

    @staticmethod
    def forward(ctx, a, pad_width):
        ctx.interior = tuple(slice(before, before + size)
                             for (before, _), size in zip(pad_width, a.shape))
        return xp_of(a).pad(a, pad_width)

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output[ctx.interior], None


class ToDevice(Function):
    """out = a copied to another device;  da = grad_output copied back."""

    @staticmethod
    def forward(ctx, a, device):
        ctx.source = "cuda" if backend.is_gpu_array(a) else "cpu"
        return backend.to_device(a, device)

    @staticmethod
    def backward(ctx, grad_output):
        return backend.to_device(grad_output, ctx.source), None
