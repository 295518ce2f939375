"""Checking and copying a state dict into a model: the engine of ``Module.load_state_dict``.

Loading is all or nothing.  Every key is checked first -- present, expected, same
shape, a compatible dtype -- and all the problems are reported together in one
error, because fixing a checkpoint one key per run is miserable.  Only when
everything matches are the arrays copied into the model.
"""
import numpy as np

from ..backend import is_gpu_array, to_device
from ..tensor import Tensor

# a state dict may omit these: they count batches, they are not learned
OPTIONAL_SUFFIXES = ("num_batches_tracked",)
LISTED_PER_KIND = 10  # beyond this many keys of one kind, the error message says "... and N more"


class StateDictError(ValueError):
    """A state dict does not fit a model; ``missing_keys``, ``unexpected_keys`` and
    ``mismatched`` (``key -> (given shape, expected shape)``) say how."""

    def __init__(self, message, missing_keys, unexpected_keys, mismatched, bad_dtypes):
        super().__init__(message)
        self.missing_keys = missing_keys
        self.unexpected_keys = unexpected_keys
        self.mismatched = mismatched
        self.bad_dtypes = bad_dtypes


def to_host_copy(value):
    """A NumPy array in host memory that shares no memory with ``value``."""
    if isinstance(value, Tensor):
        value = value.data
    if is_gpu_array(value):
        return value.get()  # the transfer is already a copy
    return np.array(value, copy=True)


def as_host_array(key, value):
    """A state-dict value (array, Tensor, number, or anything ``np.asarray`` takes) as a host array."""
    if isinstance(value, Tensor):
        return value.numpy()
    if is_gpu_array(value):
        return value.get()
    try:
        return np.asarray(value)
    except Exception as error:  # e.g. a torch tensor that still requires grad
        raise TypeError(f"load_state_dict: cannot turn the value of {key!r} "
                        f"({type(value).__name__}) into an array: {error}; pass NumPy arrays, "
                        "e.g. torch_tensor.detach().cpu().numpy()") from None


def _dtype_fits(given, target):
    """Floats load into float parameters, integers into integer buffers; nothing else converts."""
    if np.issubdtype(target, np.floating):
        return np.issubdtype(given, np.floating)
    if np.issubdtype(target, np.integer):
        return np.issubdtype(given, np.integer)
    return given == target


def _listing(items):
    shown = ", ".join(items[:LISTED_PER_KIND])
    more = len(items) - LISTED_PER_KIND
    return shown + (f", ... and {more} more" if more > 0 else "")


def load_into(entries, state_dict, strict, model_name):
    """Check ``state_dict`` against the model's ``entries`` and copy it in; see ``Module.load_state_dict``.

    entries: ``name -> (module, attribute, is_parameter)`` from ``Module._state_entries``.
    Returns ``(missing_keys, unexpected_keys)``.
    """
    op = f"load_state_dict for {model_name}"
    if not hasattr(state_dict, "keys") or not hasattr(state_dict, "__getitem__"):
        raise TypeError(f"{op}: expected a dict mapping names to arrays, "
                        f"got {type(state_dict).__name__}")

    def current(key):
        module, name, is_parameter = entries[key]
        return module._parameters[name].data if is_parameter else module._buffers[name]

    missing = [key for key in entries if key not in state_dict
               and not key.endswith(OPTIONAL_SUFFIXES)]
    unexpected = [key for key in state_dict if key not in entries]
    mismatched, bad_dtypes, arrays = {}, {}, {}
    for key in entries:
        if key not in state_dict:
            continue
        array, target = as_host_array(key, state_dict[key]), current(key)
        if tuple(array.shape) != tuple(target.shape):
            mismatched[key] = (tuple(array.shape), tuple(target.shape))
        elif not _dtype_fits(array.dtype, target.dtype):
            bad_dtypes[key] = (array.dtype, target.dtype)
        else:
            arrays[key] = array

    problems = []
    if strict and missing:
        problems.append(f"missing keys (in the model, not in the state dict): {_listing(missing)}")
    if strict and unexpected:
        problems.append(f"unexpected keys (in the state dict, not in the model): {_listing(unexpected)}")
    if mismatched:
        problems.append("shape mismatches: " + _listing(
            [f"{key} got {given}, the model has {expected}" for key, (given, expected) in mismatched.items()]))
    if bad_dtypes:
        problems.append("incompatible dtypes: " + _listing(
            [f"{key} got {given}, the model has {expected}" for key, (given, expected) in bad_dtypes.items()]))
    if problems:
        hint = ("strict=False ignores missing and unexpected keys, never wrong shapes or dtypes"
                if not (mismatched or bad_dtypes) else
                "a wrong shape usually means another architecture, width or num_classes")
        message = (f"{op}: the state dict does not fit the model, nothing was loaded.\n  "
                   + "\n  ".join(problems) + f"\n  ({hint})")
        raise StateDictError(message, missing, unexpected, mismatched, bad_dtypes)

    for key, array in arrays.items():
        target = current(key)
        # convert explicitly to the model's dtype, then copy in place on the model's device
        converted = np.asarray(array, dtype=target.dtype)
        target[...] = to_device(converted, "cuda" if is_gpu_array(target) else "cpu")
    return missing, unexpected


__all__ = ["StateDictError", "as_host_array", "load_into", "to_host_copy"]
