"""Keep freed memory for the next array instead of giving it back to the operating system.

A training step allocates and frees the same large arrays again and again: activations,
gradients, im2col columns, megabytes each.  By default glibc's ``malloc`` serves every
large request with a fresh ``mmap`` and hands it back with ``munmap`` when it is freed, so
the kernel must zero and map every page again on first touch: about 1,600 page faults for
one 6 MB activation.  On a ResNet-20 step (batch 128, MNIST) those faults took a large
share of the time (measured: docs/results/measurements.md).

PyTorch avoids this with its own caching allocator.  NumPy has none, so tinyres asks glibc
to behave like one: serve requests up to :data:`MMAP_THRESHOLD` from its heap, and keep
freed heap memory (up to :data:`TRIM_THRESHOLD`) for later requests.  The cost is that the
process's resident memory stays near its peak instead of shrinking between steps.

It happens once, when tinyres is imported.  ``TINYRES_MALLOC=system`` in the environment
turns it off; on systems without glibc (macOS, Windows, musl) nothing changes.
"""
import ctypes
import os

MMAP_THRESHOLD = 64 * 1024 * 1024        # larger blocks still get their own mmap
TRIM_THRESHOLD = 1024 * 1024 * 1024      # free memory kept at the top of the heap

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3   # mallopt's parameter numbers in <malloc.h>


def reuse_freed_memory():
    """Make glibc ``malloc`` keep and reuse freed blocks up to 64 MB; True if it applied.

    Returns False without changing anything where ``mallopt`` is missing (not glibc) or
    when the environment variable ``TINYRES_MALLOC`` is ``system``.
    """
    if os.environ.get("TINYRES_MALLOC", "").strip().lower() == "system":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError, TypeError):     # no C library handle, or not glibc
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    # mallopt returns 1 on success; both settings must take for the effect described above
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and \
        bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
