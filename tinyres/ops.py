"""The Tensor's own operators as :class:`~tinyres.autograd.Function` subclasses.

Arithmetic, reductions and shape changes.  Each ``backward`` is the derivative of its
``forward`` written right beside it; broadcasting is undone once for all by the graph
walk (:func:`tinyres.autograd.sum_to_shape`), so these only handle their own maths.
Arrays may be NumPy or CuPy: ``xp_of`` picks the module that owns them.
"""
from .autograd import Function
from .backend import xp_of


# --------------------------------------------------------------------------- arithmetic
class Add(Function):
    """out = a + b;  da = dout, db = dout."""

    @staticmethod
    def forward(ctx, a, b):
        return a + b

    @staticmethod
    def backward(ctx, grad):
        return grad, grad


class Sub(Function):
    """out = a - b;  da = dout, db = -dout."""

    @staticmethod
    def forward(ctx, a, b):
        return a - b

    @staticmethod
    def backward(ctx, grad):
        return grad, -grad


class Mul(Function):
    """out = a * b;  da = dout * b, db = dout * a."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved
        return grad * b, grad * a


class Div(Function):
    """out = a / b;  da = dout / b, db = -dout * a / b^2."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a / b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved
        grad_a = grad / b
        return grad_a, (-grad_a * a / b) if ctx.needs_input_grad[1] else None


class Neg(Function):
    """out = -a;  da = -dout."""

    @staticmethod
    def forward(ctx, a):
        return -a

    @staticmethod
    def backward(ctx, grad):
        return -grad


class Pow(Function):
    """out = a ** p for a constant exponent p;  da = dout * p * a^(p-1)."""

    @staticmethod
    def forward(ctx, a, exponent):
        ctx.save_for_backward(a)
        ctx.exponent = exponent
        return a ** exponent

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved
        return grad * ctx.exponent * a ** (ctx.exponent - 1), None


class Exp(Function):
    """out = e^a;  da = dout * out."""

    @staticmethod
    def forward(ctx, a):
        out = xp_of(a).exp(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved
        return grad * out


class Log(Function):
    """out = ln(a);  da = dout / a."""

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return xp_of(a).log(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved
        return grad / a


# --------------------------------------------------------------------------- reductions
def _normalize_axes(axis, ndim):
    """``None`` / int / tuple -> a sorted tuple of non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    for a in axes:
        if not -ndim <= a < ndim:
            raise ValueError(f"reduction: axis {a} is out of range for a tensor with {ndim} dimensions")
    return tuple(sorted(a % ndim for a in axes))


def _keepdims_shape(shape, axes):
    return tuple(1 if i in axes else size for i, size in enumerate(shape))


class Sum(Function):
    """out = sum of a over ``axis``;  da = dout broadcast back over the summed axes."""

    @staticmethod
    def forward(ctx, a, axis=None, keepdims=False):
        ctx.axes = _normalize_axes(axis, a.ndim)
        ctx.shape = a.shape
        return a.sum(axis=ctx.axes, keepdims=keepdims)

    @staticmethod
    def backward(ctx, grad):
        grad = grad.reshape(_keepdims_shape(ctx.shape, ctx.axes))
        return xp_of(grad).broadcast_to(grad, ctx.shape).copy()


class Mean(Function):
    """out = mean of a over ``axis``;  da = dout / (number of values averaged)."""

    @staticmethod
    def forward(ctx, a, axis=None, keepdims=False):
        ctx.axes = _normalize_axes(axis, a.ndim)
        ctx.shape = a.shape
        return a.mean(axis=ctx.axes, keepdims=keepdims)

    @staticmethod
    def backward(ctx, grad):
        count = 1
        for axis in ctx.axes:
            count *= ctx.shape[axis]
        grad = grad.reshape(_keepdims_shape(ctx.shape, ctx.axes)) / count
        return xp_of(grad).broadcast_to(grad, ctx.shape).copy()


class Max(Function):
    """out = max of a over ``axis``;  da = dout shared equally among the tied maxima."""

    @staticmethod
    def forward(ctx, a, axis=None, keepdims=False):
        ctx.axes = _normalize_axes(axis, a.ndim)
        out = a.max(axis=ctx.axes, keepdims=True)
        is_max = a == out
        ctx.save_for_backward(is_max, is_max.sum(axis=ctx.axes, keepdims=True))
        return out if keepdims else out.reshape([s for i, s in enumerate(a.shape) if i not in ctx.axes])

    @staticmethod
    def backward(ctx, grad):
        is_max, count = ctx.saved
        grad = grad.reshape(count.shape)
        return (is_max * (grad / count)).astype(grad.dtype, copy=False)


# --------------------------------------------------------------------------- shapes
class Reshape(Function):
    """out = a viewed with another shape;  da = dout reshaped back."""

    @staticmethod
    def forward(ctx, a, shape):
        ctx.shape = a.shape
        return a.reshape(shape)

    @staticmethod
    def backward(ctx, grad):
        return grad.reshape(ctx.shape), None


class Permute(Function):
    """out = a with its axes reordered;  da = dout with the inverse order."""

    @staticmethod
    def forward(ctx, a, axes):
        ctx.axes = axes
        return a.transpose(axes)

    @staticmethod
    def backward(ctx, grad):
        inverse = [0] * len(ctx.axes)
        for position, axis in enumerate(ctx.axes):
            inverse[axis] = position
        return grad.transpose(inverse), None


class GetItem(Function):
    """out = a[index] for basic indexing;  da = zeros with dout written at ``index``."""

    @staticmethod
    def forward(ctx, a, index):
        ctx.index, ctx.shape = index, a.shape
        return a[index]

    @staticmethod
    def backward(ctx, grad):
        full = xp_of(grad).zeros(ctx.shape, dtype=grad.dtype)
        full[ctx.index] = grad  # basic indexing reaches each element at most once
        return full, None


class MatMul(Function):
    """out = a @ b (batched over leading axes);  da = dout @ b^T,  db = a^T @ dout."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a @ b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved
        grad_a = grad @ b.swapaxes(-1, -2) if ctx.needs_input_grad[0] else None
        grad_b = a.swapaxes(-1, -2) @ grad if ctx.needs_input_grad[1] else None
        return grad_a, grad_b


class Pad(Function):
    """out = a with zeros added around each axis;  da = the interior of dout."""

    @staticmethod
    def forward(ctx, a, pad_width):
        ctx.interior = tuple(slice(before, before + size)
                             for (before, _), size in zip(pad_width, a.shape))
        return xp_of(a).pad(a, pad_width)

    @staticmethod
    def backward(ctx, grad):
        return grad[ctx.interior], None


class ToDevice(Function):
    """out = a copied to another device;  da = dout copied back."""

    @staticmethod
    def forward(ctx, a, device):
        from . import backend
        ctx.source = "cuda" if backend.is_gpu_array(a) else "cpu"
        return backend.to_device(a, device)

    @staticmethod
    def backward(ctx, grad):
        from . import backend
        return backend.to_device(grad, ctx.source), None
