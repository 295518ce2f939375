"""Activation functions."""
from ..autograd import Function
from ..backend import kernels_for
from ._checks import check_tensor


class ReLU(Function):
    """y = max(x, 0);  dx = dy where y > 0, else 0."""

    @staticmethod
    def forward(ctx, x):
        ctx.kernels = kernels_for(x, op="relu")
        out = ctx.kernels.relu_forward(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved
        return ctx.kernels.relu_backward(grad, out)


def relu(input):
    """Rectified linear unit, elementwise: y = max(x, 0).  input: any shape -> same shape."""
    check_tensor("relu", "input", input)
    return ReLU.apply(input)
