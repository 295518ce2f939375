"""Weight initialization, mirroring ``torch.nn.init``; every function fills a tensor in place.

Why the scale matters (He et al., 2015, "Delving Deep into Rectifiers"): a layer
y = W x with ``fan`` inputs per output multiplies the variance of the signal by
``fan * Var(W)``, and a ReLU halves it.  Keeping the variance constant through
many layers therefore needs

    Var(W) = 2 / fan,   i.e.   std = gain / sqrt(fan),   gain = sqrt(2) for ReLU.

``fan_in`` (C*R*S for a conv) preserves the forward signal; ``fan_out`` (K*R*S)
preserves the backward gradient, which is torchvision's choice for ResNets.

Randomness comes from one NumPy ``Generator`` owned by this module, so
``manual_seed(seed)`` makes every freshly built network reproducible.  Each
function also accepts an explicit ``generator=``.
"""
import math

import numpy as np

from ..backend import to_device
from ..tensor import Tensor

DEFAULT_SEED = 0
_generator = np.random.default_rng(DEFAULT_SEED)


def manual_seed(seed):
    """Restart the initialization generator from ``seed``; returns the new Generator."""
    global _generator
    _generator = np.random.default_rng(seed)
    return _generator


def default_generator():
    """The Generator used when no ``generator=`` is passed."""
    return _generator


def _fill(tensor, make_values, op):
    """Write ``make_values(shape, dtype)`` (host arrays) into ``tensor`` in place, on its device."""
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{op}: expected a Tensor or Parameter, got {type(tensor).__name__}")
    if not np.issubdtype(tensor.dtype, np.floating):
        raise TypeError(f"{op}: can only fill floating-point tensors, got dtype {tensor.dtype}")
    values = np.asarray(make_values(tensor.shape, tensor.dtype), dtype=tensor.dtype)
    tensor.data[...] = to_device(values, tensor.device)
    return tensor


def fan_in_and_fan_out(shape):
    """How many inputs feed each output (fan_in) and how many outputs each input feeds (fan_out).

    Linear weight (out, in): fan_in = in, fan_out = out.
    Conv weight (K, C, R, S): fan_in = C*R*S, fan_out = K*R*S.
    """
    if len(shape) < 2:
        raise ValueError(f"init: fan in and fan out need a weight with at least 2 dimensions, "
                         f"got shape {tuple(shape)}")
    receptive_field = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive_field, shape[0] * receptive_field


def calculate_gain(nonlinearity, param=None):
    """The factor by which a nonlinearity's inputs should be scaled up: sqrt(2) for ReLU.

    leaky_relu with slope a: sqrt(2 / (1 + a^2)); linear / conv / sigmoid: 1; tanh: 5/3.
    """
    if nonlinearity in ("linear", "conv2d", "sigmoid", "identity"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3.0
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1 + slope ** 2))
    raise ValueError(f"calculate_gain: unknown nonlinearity {nonlinearity!r}; expected one of "
                     "'relu', 'leaky_relu', 'linear', 'conv2d', 'sigmoid', 'tanh'")


def _kaiming_std(shape, a, mode, nonlinearity, op):
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"{op}: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = fan_in_and_fan_out(shape)
    fan = fan_in if mode == "fan_in" else fan_out
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)


def kaiming_normal_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    """He initialization from a normal distribution, in place: W ~ N(0, std^2).

    std = gain / sqrt(fan), gain = sqrt(2 / (1 + a^2)) for (leaky) ReLU, fan picked by ``mode``.
    torchvision's ResNets use ``mode="fan_out", nonlinearity="relu"``.
    """
    std = _kaiming_std(tensor.shape, a, mode, nonlinearity, "kaiming_normal_")
    rng = generator if generator is not None else _generator
    return _fill(tensor, lambda shape, dtype: std * rng.standard_normal(shape, dtype=dtype),
                 "kaiming_normal_")


def kaiming_uniform_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    """He initialization from a uniform distribution, in place: W ~ U(-bound, bound).

    bound = sqrt(3) * std, the same variance as :func:`kaiming_normal_`.  With
    ``a = sqrt(5)`` (PyTorch's default for Conv2d and Linear) bound = 1 / sqrt(fan_in).
    """
    bound = math.sqrt(3.0) * _kaiming_std(tensor.shape, a, mode, nonlinearity, "kaiming_uniform_")
    return uniform_(tensor, -bound, bound, generator=generator)


def uniform_(tensor, low=0.0, high=1.0, generator=None):
    """Fill in place with U(low, high)."""
    rng = generator if generator is not None else _generator
    return _fill(tensor, lambda shape, dtype: low + (high - low) * rng.random(shape, dtype=dtype),
                 "uniform_")


def normal_(tensor, mean=0.0, std=1.0, generator=None):
    """Fill in place with N(mean, std^2)."""
    rng = generator if generator is not None else _generator
    return _fill(tensor, lambda shape, dtype: mean + std * rng.standard_normal(shape, dtype=dtype),
                 "normal_")


def constant_(tensor, value):
    """Fill in place with ``value``."""
    return _fill(tensor, lambda shape, dtype: np.full(shape, value, dtype=dtype), "constant_")


def zeros_(tensor):
    """Fill in place with 0 (batch norm's bias; the last BN of a block with zero_init_residual)."""
    return constant_(tensor, 0.0)


def ones_(tensor):
    """Fill in place with 1 (batch norm's weight)."""
    return constant_(tensor, 1.0)


def layer_default_(weight, bias=None, generator=None):
    """PyTorch's default initialization of a Conv2d or Linear layer, in place.

    weight ~ kaiming_uniform_(a=sqrt(5)), i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in));
    bias   ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with the weight's fan_in.
    """
    kaiming_uniform_(weight, a=math.sqrt(5), generator=generator)
    if bias is not None:
        bound = 1 / math.sqrt(fan_in_and_fan_out(weight.shape)[0])
        uniform_(bias, -bound, bound, generator=generator)
