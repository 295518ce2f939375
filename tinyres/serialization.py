"""Checkpoints: ``save(state_dict, path)`` and ``load(path)`` as NumPy ``.npz`` archives.

An ``.npz`` file is a zip archive holding one ``.npy`` file per entry: a small header
(dtype, shape) and the raw bytes.  It is read with ``allow_pickle=False``, so a
checkpoint is data only -- loading one can never run code, unlike a pickle.

    tr.save(model.state_dict(), "resnet20.npz")
    model.load_state_dict(tr.load("resnet20.npz"))

Values come back bit for bit, with their dtypes and shapes (0-d arrays such as
``num_batches_tracked`` included), in the order they were saved.  A dict may nest
one level of dicts or more (``{"model": ..., "optimizer": ..., "epoch": 3}``); nested
names are stored joined by "/".
"""
import numbers
import os
import zipfile
from collections import OrderedDict

import numpy as np

from .backend import is_gpu_array
from .tensor import Tensor

SEPARATOR = "/"  # joins nested names; never part of a state-dict key, which uses dots


def _as_array(name, value):
    if isinstance(value, Tensor):
        return value.numpy()
    if is_gpu_array(value):
        return value.get()
    if isinstance(value, (np.ndarray, np.generic, numbers.Number)):
        array = np.asarray(value)
        if array.dtype.hasobject:
            raise TypeError(f"save: entry {name!r} holds Python objects (dtype object); a "
                            "checkpoint stores numeric arrays only")
        return array
    raise TypeError(f"save: entry {name!r} is a {type(value).__name__}; a checkpoint stores "
                    "arrays, Tensors, numbers and dicts of them")


def _flatten(mapping, prefix, out):
    for key, value in mapping.items():
        if not isinstance(key, str) or not key:
            raise TypeError(f"save: keys must be non-empty strings, got {key!r}")
        if SEPARATOR in key:
            raise ValueError(f"save: key {key!r} contains {SEPARATOR!r}, which marks nesting "
                             "in a checkpoint; use dots as state-dict names do")
        name = prefix + key
        if isinstance(value, dict):
            _flatten(value, name + SEPARATOR, out)
        else:
            out[name] = _as_array(name, value)
    return out


def save(state_dict, path):
    """Write a dict of arrays (e.g. ``model.state_dict()``) to ``path`` as an uncompressed ``.npz``.

    Values may be NumPy/CuPy arrays, Tensors or numbers, or dicts of them; they are
    stored as host arrays.  The file is written exactly at ``path`` (no suffix added).
    """
    if hasattr(state_dict, "state_dict") and callable(state_dict.state_dict):
        raise TypeError("save: got a model; save its state with save(model.state_dict(), path)")
    if not isinstance(state_dict, dict):
        raise TypeError(f"save: expected a dict mapping names to arrays, got {type(state_dict).__name__}")
    arrays = _flatten(state_dict, "", OrderedDict())
    temporary = f"{os.fspath(path)}.partial"
    # write beside the target, then rename: an interrupted save never leaves half a checkpoint
    with zipfile.ZipFile(temporary, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, array in arrays.items():
            with archive.open(name + ".npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, array, allow_pickle=False)
    os.replace(temporary, path)


def load(path):
    """Read a checkpoint written by :func:`save`: a dict of NumPy arrays, in the saved order.

    Nested dicts come back nested.  The file is opened with ``allow_pickle=False``:
    an archive holding pickled objects is refused rather than executed.
    """
    try:
        archive = np.load(path, allow_pickle=False)
    except ValueError as error:
        raise ValueError(f"load: {os.fspath(path)!r} is not a tinyres checkpoint (.npz of arrays): "
                         f"{error}") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError(f"load: {os.fspath(path)!r} holds a single array, not a checkpoint; "
                         "checkpoints are .npz archives written by tinyres.save")
    result = OrderedDict()
    with archive:
        for name in archive.files:
            try:
                array = archive[name]
            except ValueError as error:  # e.g. an object array, which would need pickle
                raise ValueError(f"load: entry {name!r} of {os.fspath(path)!r} cannot be read "
                                 f"without unpickling ({error}); a checkpoint is never code") from None
            *parents, leaf = name.split(SEPARATOR)
            target = result
            for parent in parents:
                target = target.setdefault(parent, OrderedDict())
            target[leaf] = array
    return result
