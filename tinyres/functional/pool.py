"""Max and average pooling over k x k windows, and global average pooling.

    max:  y[n, c, ho, wo] = max_{r,s}      x_pad[n, c, ho*sh + r, wo*sw + s]
    avg:  y[n, c, ho, wo] = 1/(R*S) sum_{r,s} x_pad[n, c, ho*sh + r, wo*sw + s]

Max pooling sends each gradient to the pixel that won its window; average pooling
spreads it evenly.  Both follow PyTorch's defaults (``ceil_mode=False``; average pooling
counts the zero padding in its divisor) and refuse, naming the argument, the options
they lack (``ceil_mode=True``, ``dilation``, ``count_include_pad=False``, ...).
"""
import numpy as np

from ..autograd import Function, Kinks, format_index
from ..backend import kernels_for, to_device
from .checks import check_tensor, check_window_fits, pair, require_default


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
    def backward(ctx, grad_output):
        (argmax,) = ctx.saved
        return ctx.kernels.max_pool2d_backward(grad_output, argmax, *ctx.geometry), None, None, None

    @staticmethod
    def kinks(ctx, inputs, output):
        """Ties: where a window's two largest values swap, its arg-max changes."""
        (argmax,) = ctx.saved
        x = inputs[0]
        _, (kernel_h, kernel_w), (sh, sw), (ph, pw) = ctx.geometry

        def describe(index):
            n, c, ho, wo = index
            top, left = ho * sh - ph, wo * sw - pw      # padding never wins, so skip it
            window = to_device(x[n, c, max(top, 0):top + kernel_h, max(left, 0):left + kernel_w],
                               "cpu")
            second, first = np.sort(window.ravel())[-2:]
            return (f"max_pool2d's window {format_index(index)} holds a near tie: its two "
                    f"largest values {second:.8g} and {first:.8g} are within the ±eps step "
                    "of each other")
        return Kinks(branch=argmax, describe=describe,
                     advice="make the values of each window differ by more than eps, or use a "
                            "smaller eps")


class AvgPool2d(Function):
    """Average pooling as an autograd Function."""

    @staticmethod
    def forward(ctx, x, kernel_size, stride, padding):
        ctx.kernels = kernels_for(x, op="avg_pool2d")
        ctx.geometry = (x.shape, kernel_size, stride, padding)
        return ctx.kernels.avg_pool2d_forward(x, kernel_size, stride, padding)

    @staticmethod
    def backward(ctx, grad_output):
        return ctx.kernels.avg_pool2d_backward(grad_output, *ctx.geometry), None, None, None


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


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """Max pooling, as ``torch.nn.functional.max_pool2d``; ``stride`` defaults to ``kernel_size``.

    y[n, c, ho, wo] = max_{r,s} x_pad[n, c, ho*sh + r, wo*sw + s]   (padding is -inf)

    input: (N, C, H, W) -> (N, C, Ho, Wo),  Ho = (H + 2*ph - R) // sh + 1

    The gradient goes to the first maximum of each window (PyTorch's choice at a tie).
    PyTorch's ``dilation``, ``ceil_mode`` and ``return_indices`` must keep their defaults.
    """
    op = "max_pool2d"
    require_default(op, "dilation", pair(op, "dilation", dilation, minimum=1), (1, 1),
                    "windows are contiguous")
    require_default(op, "ceil_mode", ceil_mode, False, "output sizes round down")
    require_default(op, "return_indices", return_indices, False,
                    "the arg-max stays inside the op, for its backward")
    arguments = _pool_arguments(op, input, kernel_size, stride, padding)
    return MaxPool2d.apply(input, *arguments)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    """Average pooling (padding counted), as ``torch.nn.functional.avg_pool2d``.

    y[n, c, ho, wo] = 1/(R*S) sum_{r,s} x_pad[n, c, ho*sh + r, wo*sw + s]   (padding is 0)

    input: (N, C, H, W) -> (N, C, Ho, Wo),  Ho = (H + 2*ph - R) // sh + 1

    PyTorch's ``ceil_mode``, ``count_include_pad`` and ``divisor_override`` must keep
    their defaults.
    """
    op = "avg_pool2d"
    require_default(op, "ceil_mode", ceil_mode, False, "output sizes round down")
    require_default(op, "count_include_pad", count_include_pad, True,
                    "the zero padding counts in every window's divisor")
    require_default(op, "divisor_override", divisor_override, None,
                    "the divisor is the window's size R*S")
    arguments = _pool_arguments(op, input, kernel_size, stride, padding)
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
