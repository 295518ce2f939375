"""``Conv2d``: a learned 2-D convolution layer (weights + optional bias) around ``F.conv2d``."""
from .. import functional as F
from ..functional.checks import pair, positive_int
from ..functional.conv import conv_padding
from . import init
from .module import Module
from .parameter import empty_parameter


class Conv2d(Module):
    """2-D convolution with learned weights, as ``torch.nn.Conv2d`` (groups=1).

    y[n, k] = b[k] + sum_c w[k, c] (*) x[n, c]     ((*) = strided, padded, dilated cross-correlation)

    weight: (K, C, R, S) = (out_channels, in_channels, *kernel_size); bias: (K,) or None.
    input (N, C, H, W) -> (N, K, Ho, Wo),  Ho = (H + 2*ph - dh*(R-1) - 1) // sh + 1.

    ``padding`` is an int, a pair, ``"valid"`` or ``"same"`` (stride 1 only), as in
    ``F.conv2d``; a string stays a string in ``self.padding``, as in PyTorch.

    Initialized like PyTorch: W, b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = C*R*S;
    ResNets re-initialize their convolutions with He's normal (``init.kaiming_normal_``).
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, bias=True):
        super().__init__()
        self.in_channels = positive_int("Conv2d", "in_channels", in_channels)
        self.out_channels = positive_int("Conv2d", "out_channels", out_channels)
        self.kernel_size = pair("Conv2d", "kernel_size", kernel_size, minimum=1)
        self.stride = pair("Conv2d", "stride", stride, minimum=1)
        self.dilation = pair("Conv2d", "dilation", dilation, minimum=1)
        # a string stays a string, as in PyTorch; conv_padding checks it against the stride
        both_sides, _ = conv_padding("Conv2d", padding, self.kernel_size, self.stride, self.dilation)
        self.padding = padding if isinstance(padding, str) else both_sides
        self.weight = empty_parameter((self.out_channels, self.in_channels, *self.kernel_size))
        if bias:
            self.bias = empty_parameter((self.out_channels,))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        """PyTorch's default: kaiming_uniform_(a=sqrt(5)), i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
        init.layer_default_(self.weight, self.bias)

    def forward(self, input):
        if getattr(input, "ndim", None) == 4 and input.shape[1] != self.in_channels:
            raise ValueError(f"{self!r}: input has {input.shape[1]} channels (shape {input.shape}), "
                             f"expected in_channels={self.in_channels}")
        return F.conv2d(input, self.weight, self.bias, self.stride, self.padding, self.dilation)

    def extra_repr(self):
        text = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}")
        if self.padding != (0, 0):
            text += f", padding={self.padding!r}"
        if self.dilation != (1, 1):
            text += f", dilation={self.dilation}"
        if self.bias is None:
            text += ", bias=False"
        return text
