"""``Parameter``: a Tensor that a Module learns.

A parameter is an ordinary leaf tensor with ``requires_grad=True``; being its own
type lets :class:`~tinyres.nn.Module` recognise it when it is assigned as an
attribute (``self.weight = Parameter(...)``) and list it in ``parameters()``.
"""
import numpy as np

from ..backend import default_device, to_device
from ..tensor import Tensor


class Parameter(Tensor):
    """A learnable tensor, registered by the Module it is assigned to.

    ``Parameter(data, requires_grad=True)`` wraps ``data`` (an array or a Tensor)
    without copying it.  Only floating-point data can be learned.
    """

    def __init__(self, data, requires_grad=True):
        if isinstance(data, Tensor):
            data = data.data
        if not hasattr(data, "dtype"):
            data = np.asarray(data, dtype=np.float32)
        if not np.issubdtype(data.dtype, np.floating):
            raise TypeError(f"Parameter: needs float32 or float64 data, got dtype {data.dtype}")
        super().__init__(data, requires_grad=requires_grad)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


def empty_parameter(shape, dtype=np.float32):
    """A new (uninitialized) Parameter on the default device; layers fill it with ``nn.init``."""
    return Parameter(to_device(np.empty(shape, dtype=dtype), default_device()))
