"""The argument checks every op and layer uses, so every bad call fails with a message that teaches.

Each check names the op (or layer), says what it received and what it expected -- never a
NumPy broadcasting error from deep inside a kernel.  The ops in ``tinyres.functional``,
the layers in ``tinyres.nn``, the data transforms and the lessons' exercises all take
their sizes through :func:`pair` and :func:`positive_int`, so one spelling of "an int or a
pair of ints" holds everywhere.
"""
import numbers

import numpy as np

from ..tensor import Tensor


def check_tensor(op, name, value, ndim=None, floating=True):
    """``value`` must be a Tensor (of rank ``ndim`` if given, of a float dtype if ``floating``)."""
    if not isinstance(value, Tensor):
        raise TypeError(f"{op}: {name} must be a tinyres Tensor, got {type(value).__name__}")
    if ndim is not None and value.ndim != ndim:
        raise ValueError(f"{op}: {name} must have {ndim} dimensions, got shape {value.shape}")
    if floating and not np.issubdtype(value.dtype, np.floating):
        raise TypeError(f"{op}: {name} must be float32 or float64, got dtype {value.dtype}")
    return value


def check_same_dtype(op, **tensors):
    """All given (non-None) tensors share one dtype; tinyres never converts silently."""
    present = {name: t for name, t in tensors.items() if t is not None}
    dtypes = {t.dtype for t in present.values()}
    if len(dtypes) > 1:
        listing = ", ".join(f"{name}: {t.dtype}" for name, t in present.items())
        raise TypeError(f"{op}: all tensors must share one dtype, got {listing}; use .astype()")


def pair(op, name, value, minimum):
    """An int or a pair of ints -> a pair of ints, each at least ``minimum``.

    A one-element sequence ``(v,)`` means ``(v, v)``, as in PyTorch.
    """
    if isinstance(value, numbers.Integral):
        value = (int(value), int(value))
    if isinstance(value, str) or not all(isinstance(v, numbers.Integral) for v in _items(value)):
        raise TypeError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
    value = tuple(int(v) for v in value)
    if len(value) == 1:
        value = value * 2
    if len(value) != 2 or any(v < minimum for v in value):
        raise ValueError(f"{op}: {name} must be an int or a pair of ints >= {minimum}, got {value}")
    return value


def positive_int(op, name, value):
    """``value`` must be a positive integer (not a bool); the error names ``op`` and the argument."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{op}: {name} must be a positive integer, got {value!r}")
    return int(value)


def _items(value):
    try:
        return list(value)
    except TypeError:
        return [value]   # not a sequence: reported as not an int


def require_default(op, name, value, default, instead):
    """An argument of PyTorch's signature whose feature tinyres lacks must keep its default.

    Otherwise a ValueError names the op, the argument and its value, and says what tinyres
    does instead (``instead``), so a call written for PyTorch never gets a different answer.
    """
    if value is default or (not isinstance(value, (Tensor, np.ndarray)) and value == default):
        return
    shown = f"a {type(value).__name__}" if isinstance(value, (Tensor, np.ndarray)) else repr(value)
    raise ValueError(f"{op}: {name}={shown} is not supported by tinyres ({instead}); "
                     f"leave {name} at its default {default!r}")


def check_window_fits(op, input_shape, kernel_size, padding, dilation=(1, 1)):
    """The (dilated) kernel must fit inside the padded input, or there is no output pixel."""
    height, width = input_shape[-2:]
    span = tuple(d * (k - 1) + 1 for k, d in zip(kernel_size, dilation))
    padded = (height + 2 * padding[0], width + 2 * padding[1])
    if span[0] > padded[0] or span[1] > padded[1]:
        raise ValueError(
            f"{op}: the kernel spans {span[0]}x{span[1]} pixels (kernel_size={kernel_size}, "
            f"dilation={dilation}) but the padded input is only {padded[0]}x{padded[1]} "
            f"(input shape {input_shape}, padding={padding}); use a smaller kernel or more padding")
