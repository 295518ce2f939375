"""Which array library runs the kernels.

tinyres has three implementations of every kernel with the same signatures:

* ``numpy`` -- the readable, vectorized reference (``numpy_kernels.py``);
* ``numba`` -- the same algorithms JIT-compiled for the CPU (``numba_kernels.py``);
* ``cupy``  -- the same algorithms on an NVIDIA GPU (``cupy_kernels.py``).

Ops never branch on the backend name: they ask :func:`kernels_for` for the kernel
module that fits their arrays.  Every kernel module defines the names in
:data:`KERNEL_NAMES` with the signatures of ``numpy_kernels``, the textbook:

* ``im2col(x, kernel_size, stride, padding, dilation) -> cols`` and its adjoint
  ``col2im(cols, x_shape, kernel_size, stride, padding, dilation) -> dx``;
* ``conv2d_forward(x, weight, stride, padding, dilation) -> y`` (no bias: the op adds it)
  and ``conv2d_backward(grad_output, x, weight, stride, padding, dilation, need_input=True,
  need_weight=True) -> (dx or None, dweight or None)``;
* ``max_pool2d_forward``/``_backward``, ``avg_pool2d_forward``/``_backward``,
  ``batch_norm_forward_train``/``batch_norm_backward``, ``relu_forward``/``relu_backward``;
* ``xp``, the array module (numpy or cupy), and ``name``.

The geometry arguments are (height, width) pairs of ints; every ``*_backward`` refuses to
run inside a graded answer (``guard.py``).  Arrays in host memory run on the selected CPU
backend (numpy or numba); arrays in GPU memory always run on the cupy kernels.

The default is ``numba`` when it imports, else ``numpy``; the ``TINYRES_BACKEND``
environment variable overrides that default.

Importing this module also asks glibc to reuse freed memory rather than return it to
the operating system (``cpu_memory.py`` says why; ``TINYRES_MALLOC=system`` opts out).
"""
import contextlib
import importlib
import os

import numpy as np

from .cpu_memory import reuse_freed_memory

BACKEND_NAMES = ("numpy", "numba", "cupy")
CPU_BACKENDS = ("numpy", "numba")

# What every kernel module must define (see the module docstring for the signatures).
KERNEL_NAMES = (
    "xp", "name",
    "im2col", "col2im", "conv2d_forward", "conv2d_backward",
    "max_pool2d_forward", "max_pool2d_backward", "avg_pool2d_forward", "avg_pool2d_backward",
    "batch_norm_forward_train", "batch_norm_backward", "relu_forward", "relu_backward",
)


class BackendUnavailableError(RuntimeError):
    """Raised when a backend is requested that cannot run on this machine."""


class DeviceMismatchError(ValueError):
    """Raised when host (CPU) and GPU arrays meet in one op."""


def why_unavailable(name):
    """``None`` if backend ``name`` can run here, else a sentence saying why and how to fix it.

    >>> why_unavailable("numpy") is None
    True
    """
    if name == "numpy":
        return None
    if name == "numba":
        try:
            importlib.import_module("numba")
        except ImportError as error:
            return f"numba is not installed ({error}); install it with `pip install numba`"
        return None
    if name == "cupy":
        try:
            cupy = importlib.import_module("cupy")
        except ImportError as error:
            return (f"cupy is not installed ({error}); on a machine with an NVIDIA GPU "
                    "install it with `pip install tinyres[gpu]` (cupy-cuda12x; pick the cupy "
                    "build matching your CUDA version)")
        try:
            count = cupy.cuda.runtime.getDeviceCount()
        except Exception as error:  # the CUDA driver itself may be missing
            return (f"no CUDA device: cupy cannot talk to a GPU driver ({error}); install or "
                    "update the NVIDIA driver, or use the numba or numpy backend")
        if count == 0:
            return ("no CUDA device: cupy is installed but the machine has no NVIDIA GPU; "
                    "use the numba or numpy backend here")
        return None
    raise ValueError(f"unknown backend {name!r}; expected one of {BACKEND_NAMES}")


def available_backends():
    """Names of the backends that can run on this machine, e.g. ``['numpy', 'numba']``."""
    return [name for name in BACKEND_NAMES if why_unavailable(name) is None]


def _default_backend():
    requested = os.environ.get("TINYRES_BACKEND")
    if requested:
        return requested.strip().lower()
    return "numba" if why_unavailable("numba") is None else "numpy"


_current = None          # name of the selected backend
_cpu_backend = None      # which CPU kernels host arrays use (numpy or numba)


def set_backend(name):
    """Select the backend by name: ``"numpy"``, ``"numba"`` or ``"cupy"``.

    ``"cupy"`` also makes new tensors live in GPU memory. Raises
    :class:`BackendUnavailableError` saying why when the backend cannot run here.
    """
    global _current, _cpu_backend
    if not isinstance(name, str) or name.lower() not in BACKEND_NAMES:
        raise ValueError(f"set_backend: unknown backend {name!r}; expected one of {BACKEND_NAMES}")
    name = name.lower()
    reason = why_unavailable(name)
    if reason is not None:
        raise BackendUnavailableError(f"set_backend({name!r}): {reason}")
    _current = name
    if name in CPU_BACKENDS:
        _cpu_backend = name
    elif _cpu_backend is None:
        _cpu_backend = "numba" if why_unavailable("numba") is None else "numpy"


def get_backend():
    """Name of the selected backend (``"numpy"``, ``"numba"`` or ``"cupy"``)."""
    if _current is None:
        set_backend(_default_backend())
    return _current


@contextlib.contextmanager
def use_backend(name):
    """Run a block with another backend, then restore the previous one.

    >>> with use_backend("numpy"):
    ...     y = F.conv2d(x, w)
    """
    global _current, _cpu_backend
    previous = (get_backend(), _cpu_backend)
    set_backend(name)
    try:
        yield
    finally:
        _current, _cpu_backend = previous


def is_gpu_array(array):
    """True for a CuPy array (checked by type, so cupy is never imported needlessly)."""
    return type(array).__module__.split(".")[0] == "cupy"


def xp_of(array):
    """The array module (``numpy`` or ``cupy``) that owns ``array``."""
    if is_gpu_array(array):
        return importlib.import_module("cupy")
    return np


def default_device():
    """``"cuda"`` when the cupy backend is selected, else ``"cpu"``."""
    return "cuda" if get_backend() == "cupy" else "cpu"


def kernels_for(*arrays, op="op"):
    """The kernel module for these arrays: cupy kernels for GPU arrays, the selected CPU kernels otherwise.

    Raises :class:`DeviceMismatchError` naming ``op`` when host and GPU arrays are mixed.
    """
    on_gpu = [is_gpu_array(a) for a in arrays if a is not None]
    if any(on_gpu):
        if not all(on_gpu):
            raise DeviceMismatchError(
                f"{op}: got arrays on both cpu and cuda; move them to one device "
                "with .to('cuda') or .to('cpu') first")
        return importlib.import_module("tinyres.backend.cupy_kernels")
    get_backend()  # resolve the default on first use
    return importlib.import_module(f"tinyres.backend.{_cpu_backend}_kernels")


def to_device(array, device):
    """Copy ``array`` to ``"cpu"`` (a NumPy array) or ``"cuda"`` (a CuPy array); no copy if already there."""
    if device not in ("cpu", "cuda"):
        raise ValueError(f"to: unknown device {device!r}; expected 'cpu' or 'cuda'")
    if device == "cpu":
        return array.get() if is_gpu_array(array) else array
    if is_gpu_array(array):
        return array
    reason = why_unavailable("cupy")
    if reason is not None:
        raise BackendUnavailableError(f"to('cuda'): {reason}")
    return importlib.import_module("cupy").asarray(array)


# once per process, on import: see cpu_memory.py
MALLOC_REUSES_FREED_MEMORY = reuse_freed_memory()
