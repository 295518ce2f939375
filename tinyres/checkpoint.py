"""Run checkpoints: everything needed to continue, evaluate or use a training run.

A run checkpoint (``last.npz`` and ``best.npz`` in a run's folder) is an archive written
by :func:`tinyres.save` -- an ``.npz`` of plain arrays, read with ``allow_pickle=False`` --
with three groups of entries:

    metadata        the JSON below, as UTF-8 bytes in a uint8 array
    model/<name>    the model's state_dict: parameters and batch-norm statistics
    arrays/<name>   the other arrays the JSON points to: momentum buffers, Adam's moments,
                    the key of NumPy's global generator

and the JSON:

    format, format_version      "tinyres-run", FORMAT_VERSION
    tinyres_version             the version of tinyres that wrote the file
    epoch, epochs, step         the last complete epoch, the run's length, optimizer steps
    run                         what was trained on what: model, width, in_channels,
                                num_classes, classes, input_shape, dataset, normalization
                                {mean, std}, the recipe (see tinyres.experiments.run)
    optimizer, scheduler        {"type": class name, "state": its state_dict()}
    scheduler_interval          "epoch" or "step": when the schedule advances
    loader                      the training loader's state_dict() (epoch, seed, sizes)
    rng                         the states of Python's, NumPy's global and
                                tinyres.nn.init's generators
    history, best_accuracy      the per-epoch history so far, the best accuracy in it

Inside the JSON an array is written ``{"__array__": "<name>"}``, naming its entry in
``arrays/``.  The metadata alone is a quick read: :func:`read_metadata`, or
``json.loads(numpy.load(path)["metadata"].tobytes())``.

    tr.load("runs/x/last.npz")["model"]      # the weights alone, for model.load_state_dict
    checkpoint = load_checkpoint("runs/x/last.npz")
    checkpoint.epoch, checkpoint.run["model"], checkpoint.optimizer_state
"""
import json
import os
import random
import zipfile
from dataclasses import dataclass, field

import numpy as np

from .backend import is_gpu_array
from .serialization import CheckpointError, load, save

FORMAT = "tinyres-run"
FORMAT_VERSION = 1
ARRAY_REFERENCE = "__array__"


@dataclass
class RunCheckpoint:
    """The state of a training run after its epoch ``epoch``; see the module's docstring.

    ``path`` is set by :func:`load_checkpoint` (None before the checkpoint is saved).
    """
    epoch: int
    epochs: int
    step: int
    model_state: dict
    optimizer_type: str = None
    optimizer_state: dict = None
    scheduler_type: str = None
    scheduler_state: dict = None
    scheduler_interval: str = None
    loader_state: dict = None
    rng_state: dict = None
    history: dict = None
    best_accuracy: float = None
    run: dict = None
    tinyres_version: str = field(default_factory=lambda: _tinyres_version())
    path: str = None


def _tinyres_version():
    from . import __version__

    return __version__


# ---------------------------------------------------------------------- the generators
def rng_state():
    """The states of every generator a run may draw from: Python's ``random``, NumPy's
    global generator and the generator of ``tinyres.nn.init`` (plain data and arrays)."""
    from .nn.init import default_generator

    version, internal, gauss_next = random.getstate()
    return {"python": [version, list(internal), gauss_next],
            "numpy": np.random.get_state(legacy=False),
            "init": default_generator().bit_generator.state}


def restore_rng_state(state):
    """Put back the generator states returned by :func:`rng_state`."""
    from .nn.init import default_generator

    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    numpy_state = dict(state["numpy"])
    numpy_state["state"] = {**numpy_state["state"],
                            "key": np.asarray(numpy_state["state"]["key"], dtype=np.uint32)}
    np.random.set_state(numpy_state)
    default_generator().bit_generator.state = state["init"]


# ---------------------------------------------------------------------- arrays in JSON
def _split_arrays(value, name, arrays):
    """``value`` with every array replaced by ``{"__array__": name}``; arrays go to ``arrays``."""
    prefix = f"{name}." if name else ""
    if isinstance(value, dict):
        return {str(key): _split_arrays(item, f"{prefix}{key}", arrays)
                for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_split_arrays(item, f"{prefix}{index}", arrays)
                for index, item in enumerate(value)]
    if isinstance(value, np.ndarray) or is_gpu_array(value):
        arrays[name] = value
        return {ARRAY_REFERENCE: name}
    if isinstance(value, np.generic):
        return value.item()
    return value


def _join_arrays(value, arrays, path):
    """The inverse of :func:`_split_arrays`: references replaced by the arrays they name."""
    if isinstance(value, dict):
        if set(value) == {ARRAY_REFERENCE}:
            name = value[ARRAY_REFERENCE]
            if name not in arrays:
                raise CheckpointError(path, f"the entry arrays/{name} named by its metadata is "
                                            "missing; the file is damaged")
            return arrays[name]
        return {key: _join_arrays(item, arrays, path) for key, item in value.items()}
    if isinstance(value, list):
        return [_join_arrays(item, arrays, path) for item in value]
    return value


# ---------------------------------------------------------------------- save and load
def save_checkpoint(checkpoint, path):
    """Write a :class:`RunCheckpoint` to ``path`` atomically (a complete file or none)."""
    metadata = {"format": FORMAT, "format_version": FORMAT_VERSION,
                "tinyres_version": checkpoint.tinyres_version,
                "epoch": checkpoint.epoch, "epochs": checkpoint.epochs, "step": checkpoint.step,
                "run": checkpoint.run,
                "optimizer": {"type": checkpoint.optimizer_type,
                              "state": checkpoint.optimizer_state},
                "scheduler": {"type": checkpoint.scheduler_type,
                              "state": checkpoint.scheduler_state},
                "scheduler_interval": checkpoint.scheduler_interval,
                "loader": checkpoint.loader_state, "rng": checkpoint.rng_state,
                "history": checkpoint.history, "best_accuracy": checkpoint.best_accuracy}
    arrays = {}
    text = json.dumps(_split_arrays(metadata, "", arrays))
    save({"metadata": np.frombuffer(text.encode("utf-8"), dtype=np.uint8),
          "model": dict(checkpoint.model_state), "arrays": arrays}, path)


def _parse_metadata(raw, path):
    """The metadata entry (uint8 array) -> dict, checked for format and version."""
    if not isinstance(raw, np.ndarray) or raw.dtype != np.uint8 or raw.ndim != 1:
        raise CheckpointError(path, "its 'metadata' entry is not JSON text; the file is damaged")
    try:
        metadata = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise CheckpointError(path, f"its metadata is damaged ({error})") from None
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        found = metadata.get("format") if isinstance(metadata, dict) else None
        raise CheckpointError(path, f"its metadata is of format {found!r}, not {FORMAT!r}",
                              what="a tinyres run checkpoint")
    version = metadata.get("format_version")
    if version != FORMAT_VERSION:
        writer = metadata.get("tinyres_version", "an unknown version")
        newer = isinstance(version, int) and version > FORMAT_VERSION
        advice = "upgrade tinyres to read it" if newer else "read it with the tinyres that wrote it"
        raise CheckpointError(path, f"it was written by tinyres {writer} in checkpoint format "
                                    f"{version!r}; this tinyres ({_tinyres_version()}) reads "
                                    f"format {FORMAT_VERSION}: {advice}",
                              what="a checkpoint this tinyres can read")
    missing = [key for key in ("epoch", "epochs", "step", "run") if key not in metadata]
    if missing:
        raise CheckpointError(path, f"its metadata lacks {', '.join(missing)}; the file is damaged")
    return metadata


def _weights_only(path):
    return CheckpointError(
        path, "it holds arrays only (no 'metadata' entry): weights saved with tinyres.save, "
              "or by an older tinyres train, whose checkpoints held the weights alone. Load "
              "them with model.load_state_dict(tr.load(path)); a run checkpoint is written "
              "by tinyres train (fit with an out_dir)",
        what="a tinyres run checkpoint")


def read_metadata(path):
    """Only the JSON metadata of a run checkpoint: a quick read, the arrays are skipped."""
    try:
        with zipfile.ZipFile(path) as archive:
            if "metadata.npy" not in archive.namelist():
                raise _weights_only(path)
            with archive.open("metadata.npy") as member:
                raw = np.lib.format.read_array(member, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        load(path)  # raises the error that explains what is wrong with the file, naming it
        raise
    return _parse_metadata(raw, path)


def load_checkpoint(path):
    """Read a run checkpoint written by :func:`save_checkpoint` into a :class:`RunCheckpoint`.

    Raises :class:`~tinyres.serialization.CheckpointError` (a ValueError naming the file)
    when the file is damaged, holds weights only, or comes from another format version.
    """
    path = os.fspath(path)
    entries = load(path)
    if "metadata" not in entries:
        raise _weights_only(path)
    metadata = _parse_metadata(entries["metadata"], path)
    if "model" not in entries:
        raise CheckpointError(path, "it has no model/ entries; the file is damaged")
    arrays = dict(entries.get("arrays", {}))
    metadata = _join_arrays(metadata, arrays, path)
    optimizer, scheduler = metadata.get("optimizer") or {}, metadata.get("scheduler") or {}
    return RunCheckpoint(
        epoch=metadata["epoch"], epochs=metadata["epochs"], step=metadata["step"],
        model_state=dict(entries["model"]),
        optimizer_type=optimizer.get("type"), optimizer_state=optimizer.get("state"),
        scheduler_type=scheduler.get("type"), scheduler_state=scheduler.get("state"),
        scheduler_interval=metadata.get("scheduler_interval"),
        loader_state=metadata.get("loader"), rng_state=metadata.get("rng"),
        history=metadata.get("history"), best_accuracy=metadata.get("best_accuracy"),
        run=metadata["run"], tinyres_version=metadata.get("tinyres_version"), path=path)


def checkpoint_path(run_or_file, name="last.npz"):
    """``RUN_DIR`` -> ``RUN_DIR/last.npz`` (or ``name``); a file path is returned as it is.

    Raises FileNotFoundError saying what is missing: the folder, or its checkpoint.
    """
    path = os.fspath(run_or_file)
    if os.path.isdir(path):
        candidate = os.path.join(path, name)
        if not os.path.isfile(candidate):
            raise FileNotFoundError(f"{path!r} holds no {name}: it is not a run folder, or the "
                                    "run stopped before its first epoch completed")
        return candidate
    if not os.path.exists(path):
        raise FileNotFoundError(f"no run folder or checkpoint {path!r}")
    return path


# ---------------------------------------------------------------------- restoring a run
def restore_run(checkpoint, model, optimizer=None, scheduler=None, scheduler_interval=None,
                train_loader=None):
    """Load a checkpoint's states into a freshly built model, optimizer, scheduler and loader.

    Each must be of the kind the run was saved with (same classes, same parameters),
    else ValueError says what differs.  The generators' states are restored last.
    """
    from .nn.parallel import unwrap   # nn imports tensor, which needs the package loaded

    where = checkpoint.path or "the checkpoint"
    unwrap(model).load_state_dict(checkpoint.model_state)
    if optimizer is not None:
        _check_kind(where, "optimizer", checkpoint.optimizer_type, optimizer)
        optimizer.load_state_dict(checkpoint.optimizer_state)
        _check_kind(where, "scheduler", checkpoint.scheduler_type, scheduler)
    if scheduler is not None:
        if scheduler_interval != checkpoint.scheduler_interval:
            raise ValueError(f"{where} stepped its scheduler once per "
                             f"{checkpoint.scheduler_interval}, not per {scheduler_interval}")
        scheduler.load_state_dict(checkpoint.scheduler_state)
    if train_loader is not None and checkpoint.loader_state is not None \
            and hasattr(train_loader, "load_state_dict"):
        train_loader.load_state_dict(checkpoint.loader_state)
    if checkpoint.rng_state is not None:
        restore_rng_state(checkpoint.rng_state)


def _check_kind(where, what, saved_type, instance):
    current = None if instance is None else type(instance).__name__
    if current != saved_type:
        raise ValueError(f"{where} was trained with the {what} {saved_type}, not {current}")
