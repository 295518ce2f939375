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

Files are written atomically (:func:`write_atomically`): beside the target, then renamed
over it.  A file that is not a whole checkpoint -- truncated, corrupted (each entry has a
CRC-32 checksum), text, random bytes -- is refused with a :class:`CheckpointError` that
names it.  The checkpoints of a training run, which carry the optimizer, the schedule and
the rest of the run as well, are built on these two functions in :mod:`tinyres.checkpoint`.
"""
import numbers
import os
import zipfile
import zlib
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
    write_atomically(path, lambda file: _write_archive(file, arrays))


def _write_archive(file, arrays):
    with zipfile.ZipFile(file, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, array in arrays.items():
            with archive.open(name + ".npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, array, allow_pickle=False)


def write_atomically(path, write):
    """Call ``write(file)`` on a new file beside ``path``, then rename it to ``path``.

    The rename is atomic, so ``path`` always holds either its old content or the whole
    new one: an interrupted write (Ctrl-C, a full disk, a crash) never leaves half a
    file.  The data is flushed to the disk before the rename; on any error the partial
    file is removed and the error raised again.
    """
    path = os.fspath(path)
    temporary = f"{path}.partial"
    try:
        with open(temporary, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:  # KeyboardInterrupt too: never leave the partial file behind
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


class CheckpointError(ValueError):
    """A file that is not a readable tinyres checkpoint; ``path`` names it, ``reason`` says why.

    The message reads "'<path>' is not <what>: <reason>".
    """

    def __init__(self, path, reason, what="a readable tinyres checkpoint"):
        self.path, self.reason = os.fspath(path), reason
        super().__init__(f"{self.path!r} is not {what}: {reason}")


NPY_MAGIC = b"\x93NUMPY"            # the first bytes of a single .npy array
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")   # a zip archive (.npz), with or without entries


def _not_an_archive(head):
    """Why a file whose first bytes are ``head`` cannot be an .npz archive (None if it may be)."""
    if not head:
        return "the file is empty"
    if head.startswith(NPY_MAGIC):
        return ("it holds a single array (a .npy file), not a checkpoint; checkpoints are .npz "
                "archives written by tinyres.save")
    if head.startswith(ZIP_MAGICS):
        return None
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = ""
    if text and all(character.isprintable() or character.isspace() for character in text):
        return f"it is a text file (it starts with {text[:24]!r}), not an .npz archive"
    return f"it is not an .npz (zip) archive: it starts with the bytes {head[:8]!r}"


def _read_entry(archive, member, path):
    """One ``.npy`` member of the archive as an array, refusing anything that needs pickle."""
    name = member[:-len(".npy")]
    try:
        with archive.open(member) as stream:
            return np.lib.format.read_array(stream, allow_pickle=False)
    except ValueError as error:
        # NumPy refuses object arrays with advice to allow pickling, which a checkpoint
        # must never need: say so in our own words.
        if "pickle" in str(error):
            raise CheckpointError(path, f"entry {name!r} holds Python objects, which cannot be "
                                        "read without unpickling; a checkpoint holds numbers "
                                        "only and is never unpickled") from None
        raise CheckpointError(path, f"entry {name!r} is damaged ({error})") from None
    except (zipfile.BadZipFile, EOFError, OSError, zlib.error) as error:
        raise CheckpointError(path, f"entry {name!r} is damaged ({error})") from None


def load(path):
    """Read a checkpoint written by :func:`save`: a dict of NumPy arrays, in the saved order.

    Nested dicts come back nested.  Every entry is read with ``allow_pickle=False``:
    an archive holding pickled objects is refused rather than executed.
    Raises :class:`CheckpointError` (a ValueError naming the file) for anything that is
    not a whole, readable checkpoint: a text file, random bytes, a truncated or
    corrupted archive; ``FileNotFoundError`` when there is no file.
    """
    with open(path, "rb") as file:  # FileNotFoundError names the path itself
        reason = _not_an_archive(file.read(64))
    if reason is not None:
        raise CheckpointError(path, reason)
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, EOFError, OSError) as error:
        raise CheckpointError(path, f"the archive is incomplete or damaged ({error}); was it cut "
                                    "short, e.g. by a full disk or an interrupted copy?") from None
    result = OrderedDict()
    with archive:
        for member in archive.namelist():
            if not member.endswith(".npy"):
                raise CheckpointError(path, f"entry {member!r} is not an array (.npy)")
            array = _read_entry(archive, member, path)
            *parents, leaf = member[:-len(".npy")].split(SEPARATOR)
            target = result
            for parent in parents:
                target = target.setdefault(parent, OrderedDict())
            target[leaf] = array
    return result
