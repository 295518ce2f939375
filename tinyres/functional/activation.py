"""Activation functions."""
from ..autograd import Function, Kinks, format_index
from ..backend import kernels_for
from .checks import check_tensor, require_default


class ReLU(Function):
    """y = max(x, 0);  dx = 0 where y <= 0, else grad_output.

    So a NaN input passes grad_output through, as in PyTorch.
    """

    @staticmethod
    def forward(ctx, x):
        ctx.kernels = kernels_for(x, op="relu")
        out = ctx.kernels.relu_forward(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad_output):
        (out,) = ctx.saved
        return ctx.kernels.relu_backward(grad_output, out)

    @staticmethod
    def kinks(ctx, inputs, output):
        """The kink at x = 0: which side of it each input lies on."""
        (x,) = inputs

        def describe(index):
            return (f"ReLU's input {format_index(index)} = {float(x[index]):.3g} is within "
                    "the ±eps step of its kink at 0")
        return Kinks(branch=x > 0, describe=describe,
                     advice="move the input away from 0 or use a smaller eps")


def relu(input, inplace=False):
    """Rectified linear unit, elementwise, as ``torch.nn.functional.relu``: y = max(x, 0).

    d relu(x)/dx = 1 for x > 0 and 0 for x < 0; at the kink x = 0 tinyres takes 0, and at a NaN
    input it passes the gradient through (y is NaN there too), both as PyTorch does.
    ``inplace=True`` is refused: every tinyres op makes a new tensor.

    input: any shape -> same shape
    """
    check_tensor("relu", "input", input)
    require_default("relu", "inplace", inplace, False, "every op makes a new tensor")
    return ReLU.apply(input)
