"""Pooling layers: ``MaxPool2d`` (the ResNet stem), ``AvgPool2d``, ``AdaptiveAvgPool2d`` (the head)."""
from .. import functional as F
from ..functional.checks import pair
from .module import Module


class _Pool2d(Module):
    """Shared constructor of the windowed pooling layers."""

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        name = type(self).__name__
        self.kernel_size = pair(name, "kernel_size", kernel_size, minimum=1)
        self.stride = self.kernel_size if stride is None else pair(name, "stride", stride, minimum=1)
        self.padding = pair(name, "padding", padding, minimum=0)

    def extra_repr(self):
        # PyTorch prints plain ints when the pair is square
        def show(value):
            return value[0] if value[0] == value[1] else value
        return (f"kernel_size={show(self.kernel_size)}, stride={show(self.stride)}, "
                f"padding={show(self.padding)}")


class MaxPool2d(_Pool2d):
    """Max over each window, as ``torch.nn.MaxPool2d``: y = max_{r,s} x_pad[ho*sh + r, wo*sw + s].

    input (N, C, H, W) -> (N, C, Ho, Wo),  Ho = (H + 2*ph - R) // sh + 1; stride defaults to kernel_size.
    """

    def forward(self, input):
        return F.max_pool2d(input, self.kernel_size, self.stride, self.padding)


class AvgPool2d(_Pool2d):
    """Mean over each window (padding counted), as ``torch.nn.AvgPool2d``.

    input (N, C, H, W) -> (N, C, Ho, Wo),  Ho = (H + 2*ph - R) // sh + 1; stride defaults to kernel_size.
    """

    def forward(self, input):
        return F.avg_pool2d(input, self.kernel_size, self.stride, self.padding)


class AdaptiveAvgPool2d(Module):
    """Global average pooling (``output_size=1`` only): y[n, c] = mean_{h,w} x[n, c, h, w].

    input (N, C, H, W) -> (N, C, 1, 1), whatever H and W -- which is why a ResNet
    accepts any image size.
    """

    def __init__(self, output_size=1):
        super().__init__()
        if output_size not in (1, (1, 1), [1, 1]):
            raise ValueError(f"AdaptiveAvgPool2d: only output_size=1 (global pooling, as in "
                             f"ResNet's head) is implemented, got {output_size!r}")
        self.output_size = (1, 1)

    def forward(self, input):
        return F.adaptive_avg_pool2d(input, 1)

    def extra_repr(self):
        return f"output_size={self.output_size}"
