"""``Linear`` (the fully connected layer), ``Flatten`` and ``Identity``."""
import math
import numbers

from .. import functional as F
from . import init
from ..functional.checks import positive_int
from .module import Module
from .parameter import empty_parameter


class Linear(Module):
    """Fully connected layer, as ``torch.nn.Linear``: y = x W^T + b.

    weight: (out_features, in_features); bias: (out_features,) or None.
    input (N, in_features) -> (N, out_features).
    Initialized like PyTorch: W, b ~ U(-1/sqrt(in_features), 1/sqrt(in_features)).
    """

    def __init__(self, in_features, out_features, bias=True):
        super().__init__()
        self.in_features = positive_int("Linear", "in_features", in_features)
        self.out_features = positive_int("Linear", "out_features", out_features)
        self.weight = empty_parameter((self.out_features, self.in_features))
        if bias:
            self.bias = empty_parameter((self.out_features,))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        """PyTorch's default: kaiming_uniform_(a=sqrt(5)), i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
        init.layer_default_(self.weight, self.bias)

    def forward(self, input):
        if getattr(input, "ndim", None) == 2 and input.shape[1] != self.in_features:
            raise ValueError(f"{self!r}: input has {input.shape[1]} features (shape {input.shape}), "
                             f"expected in_features={self.in_features}; did the image size or "
                             "the width of the network change?")
        return F.linear(input, self.weight, self.bias)

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class Flatten(Module):
    """Merge axes ``start_dim..end_dim`` into one: (N, C, 1, 1) -> (N, C) with the defaults."""

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        for name, value in (("start_dim", start_dim), ("end_dim", end_dim)):
            if not isinstance(value, numbers.Integral):
                raise TypeError(f"Flatten: {name} must be an int, got {value!r}")
        self.start_dim, self.end_dim = int(start_dim), int(end_dim)

    def forward(self, input):
        start, end = self.start_dim % input.ndim, self.end_dim % input.ndim
        if start > end:
            raise ValueError(f"{self!r}: start_dim comes after end_dim for input of shape {input.shape}")
        merged = math.prod(input.shape[start:end + 1])
        return input.reshape(input.shape[:start] + (merged,) + input.shape[end + 1:])

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Identity(Module):
    """Returns its input unchanged: y = x.  A placeholder where a layer is optional."""

    def __init__(self, *args, **kwargs):
        super().__init__()  # arguments are accepted and ignored, as in PyTorch

    def forward(self, input):
        return input
