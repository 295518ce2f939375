"""Max and average pooling over k x k windows, and global average pooling.

    max:  y[n, c, ho, wo] = max_{r,s}      x_pad[n, c, ho*sh + r, wo*sw + s]
    avg:  y[n, c, ho, wo] = 1/(R*S) sum_{r,s} x_pad[n, c, ho*sh + r, wo*sw + s]

Max pooling sends each gradient to the pixel that won its window; average pooling
spreads it evenly.  Both follow PyTorch (``ceil_mode=False``; average pooling counts
the zero padding in its divisor).
"""
from ..autograd import Function
from ..backend import kernels_for
from ._checks import check_tensor, check_window_fits, pair


class MaxPool2d(Function):
    """Max pooling as an autograd Function; saves the arg-max of each window."""

    @staticmethod
    def forward(ctx, x, kernel_size, stride, padding):
        ctx.kernels = kernels_for(x, op="max_pool2d")
        out, argmax = ctx.kernels.max_pool2d_forward(x, kernel_size, stride, padding)
        ctx.save_for_backward(argmax)
        ctx.geometry = (x.shape, kernel_size, stride, padding)
        return out

    @staticmethod
    def backward(ctx, grad):
        (argmax,) = ctx.saved
        return ctx.kernels.max_pool2d_backward(grad, argmax, *ctx.geometry), None, None, None


class AvgPool2d(Function):
    """Average pooling as an autograd Function."""

    @staticmethod
    def forward(ctx, x, kernel_size, stride, padding):
        ctx.kernels = kernels_for(x, op="avg_pool2d")
        ctx.geometry = (x.shape, kernel_size, stride, padding)
        return ctx.kernels.avg_pool2d_forward(x, kernel_size, stride, padding)

    @staticmethod
    def backward(ctx, grad):
        return ctx.kernels.avg_pool2d_backward(grad, *ctx.geometry), None, None, None


def _pool_arguments(op, input, kernel_size, stride, padding):
    check_tensor(op, "input", input, ndim=4)
    kernel_size = pair(op, "kernel_size", kernel_size, minimum=1)
    stride = kernel_size if stride is None else pair(op, "stride", stride, minimum=1)
    padding = pair(op, "padding", padding, minimum=0)
    if any(2 * p > k for p, k in zip(padding, kernel_size)):
        raise ValueError(f"{op}: padding {padding} must be at most half of kernel_size "
                         f"{kernel_size}, or some windows would hold only padding")
    check_window_fits(op, input.shape, kernel_size, padding)
    return kernel_size, stride, padding


def max_pool2d(input, kernel_size, stride=None, padding=0):
    """Max pooling, as ``torch.nn.functional.max_pool2d``; ``stride`` defaults to ``kernel_size``.

    input: (N, C, H, W) -> (N, C, Ho, Wo),  Ho = (H + 2*ph - R) // sh + 1
    """
    arguments = _pool_arguments("max_pool2d", input, kernel_size, stride, padding)
    return MaxPool2d.apply(input, *arguments)


def avg_pool2d(input, kernel_size, stride=None, padding=0):
    """Average pooling (padding counted), as ``torch.nn.functional.avg_pool2d``.

    input: (N, C, H, W) -> (N, C, Ho, Wo),  Ho = (H + 2*ph - R) // sh + 1
    """
    arguments = _pool_arguments("avg_pool2d", input, kernel_size, stride, padding)
    return AvgPool2d.apply(input, *arguments)


def adaptive_avg_pool2d(input, output_size):
    """Global average pooling: the mean of each channel's H x W map (only ``output_size=1``).

    y[n, c, 0, 0] = 1/(H*W) sum_{h,w} x[n, c, h, w]

    input: (N, C, H, W) -> (N, C, 1, 1)
    """
    check_tensor("adaptive_avg_pool2d", "input", input, ndim=4)
    if output_size not in (1, (1, 1), [1, 1]):
        raise ValueError(f"adaptive_avg_pool2d: only output_size=1 (global pooling, as in "
                         f"ResNet's head) is implemented, got {output_size!r}")
    return input.mean(axis=(2, 3), keepdims=True)
