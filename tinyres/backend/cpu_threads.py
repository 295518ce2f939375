"""CPU threads: how many, the worker pool that runs a batch chunk by chunk, and Numba's threading layer.

The convolution (``cpu_conv.py``) cuts its batch into chunks and hands them to
:func:`map_chunks`, one CPU core per slice of the batch.

Why threads here rather than threads inside each kernel?  When every kernel and every GEMM
splits its own work over the cores, the cores meet and wait at the end of each one, and
the pools of Numba and of the BLAS library hand the cores back and forth.  Instead each
worker thread takes a contiguous slice of the chunks and runs the whole chain (im2col or
Winograd's transforms, single-threaded GEMMs, col2im) on its own core.  The heavy parts --
NumPy copies, BLAS, and the ``nogil`` Numba kernels -- release Python's GIL, so the workers
really run in parallel.

Results come back in chunk order, so a sum over chunks rounds the same way however many
threads ran it.
"""
import contextlib
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

from threadpoolctl import ThreadpoolController, threadpool_limits

from .shapes import chunk_bounds

# Columns per chunk, in bytes: about one core's L2 cache (1-2 MB on current x86 cores).
CHUNK_BYTES = 1_500_000

_lock = threading.Lock()
_num_threads = None           # None: one per available core
_pool = None
_blas = None                  # a threadpoolctl controller of the BLAS libraries loaded
_blas_modules_seen = 0        # len(sys.modules) when _blas was made
_blas_holders = 0             # map_chunks calls running now (they may overlap)
_blas_limiter = None          # what restores the BLAS's own thread count


def available_cores():
    """How many cores this process may run on (respects taskset/cgroup affinity)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:    # macOS and Windows have no sched_getaffinity
        return os.cpu_count() or 1


def import_numba():
    """Import Numba with its threading layer chosen; every module that compiles with Numba uses this.

    OpenMP's worker threads spin while they wait, and so do OpenBLAS's after every GEMM.
    On a small machine the two pools then fight over the cores and a convolution's
    backward runs several times slower; Numba's own work-queue pool sleeps instead.  The
    layer must be set before Numba starts its threads.  An explicit
    ``NUMBA_THREADING_LAYER`` in the environment still wins.

    Raises ImportError when Numba is not installed.
    """
    import numba
    if "NUMBA_THREADING_LAYER" not in os.environ:
        numba.config.THREADING_LAYER = "workqueue"
    return numba


def set_num_threads(count):
    """Use ``count`` CPU threads everywhere: Numba's kernels, the BLAS, and the conv workers.

    Threads that wait for a core held by another process stall every parallel kernel, so
    on a shared machine fewer threads can be many times faster.  Default: one per core.
    """
    global _num_threads, _pool
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise ValueError(f"set_num_threads: count must be an integer >= 1, got {count!r}")
    try:
        numba = import_numba()   # the threading layer must be chosen before Numba's threads start
        numba.set_num_threads(min(count, numba.config.NUMBA_NUM_THREADS))
    except ImportError:       # the numpy backend alone needs no numba
        pass
    threadpool_limits(limits=count, user_api="blas")
    with _lock:
        _num_threads = count
        if _pool is not None:
            _pool.shutdown(wait=True)
            _pool = None


def get_num_threads():
    """The number of worker threads :func:`map_chunks` uses.

    Until :func:`set_num_threads` is called: ``TINYRES_NUM_THREADS`` from the environment
    if it is set, else one per available core.
    """
    if _num_threads is not None:
        return _num_threads
    requested = os.environ.get("TINYRES_NUM_THREADS", "").strip()
    if requested:
        if not requested.isdigit() or int(requested) < 1:
            raise ValueError(f"TINYRES_NUM_THREADS must be an integer >= 1, got {requested!r}")
        return int(requested)
    return available_cores()


# Every variable that sets a thread count for a process that is about to start: tinyres's
# own, Numba's, OpenMP's and the BLAS libraries'.
THREAD_VARIABLES = ("TINYRES_NUM_THREADS", "NUMBA_NUM_THREADS", "OMP_NUM_THREADS",
                    "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def environment_with_threads(count):
    """A copy of ``os.environ`` in which every thread variable says ``count``.

    For a child process (an MPI rank, a notebook kernel): the variables are read when
    its libraries load, which is too late to change from inside it.
    """
    return dict(os.environ, **{name: str(count) for name in THREAD_VARIABLES})


def chunk_size(batch, bytes_per_sample):
    """How many samples fit in :data:`CHUNK_BYTES` of columns (at least 1, at most ``batch``)."""
    return max(1, min(batch, CHUNK_BYTES // max(1, bytes_per_sample)))


def _forget_pool_after_fork():
    """A forked child inherits the pool object but none of its threads: start afresh."""
    global _lock, _pool, _blas_holders
    _lock = threading.Lock()
    _pool = None
    _blas_holders = 0


if hasattr(os, "register_at_fork"):   # POSIX; on Windows processes are never forked
    os.register_at_fork(after_in_child=_forget_pool_after_fork)


def _executor():
    global _pool
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(get_num_threads(), thread_name_prefix="tinyres")
        return _pool


def _blas_controller():
    """A threadpoolctl controller that knows every BLAS library loaded so far.

    An import can load another BLAS (SciPy and PyTorch bring their own copies), so the
    controller is rebuilt when more modules have been imported since it was made; building
    one costs many times what setting a limit with it does (measured:
    docs/results/measurements.md), too much to do on every call.
    """
    global _blas, _blas_modules_seen
    if _blas is None or len(sys.modules) != _blas_modules_seen:
        _blas, _blas_modules_seen = ThreadpoolController(), len(sys.modules)
    return _blas


@contextlib.contextmanager
def _blas_on_one_thread():
    """Hold the BLAS to one thread while any map_chunks runs; the last one out restores it.

    Counting the holders keeps two overlapping calls (from two user threads) from
    restoring the limit in the wrong order and leaving the BLAS on one thread for good.
    """
    global _blas_holders, _blas_limiter
    with _lock:
        if _blas_holders == 0:
            _blas_limiter = _blas_controller().limit(limits=1, user_api="blas")
        _blas_holders += 1
    try:
        yield
    finally:
        with _lock:
            _blas_holders -= 1
            if _blas_holders == 0:
                _blas_limiter.restore_original_limits()


def map_chunks(work, batch, chunk):
    """Call ``work(start, stop)`` for each chunk ``[start, stop)`` of ``range(batch)``.

    Returns the results in chunk order.  The chunks are split into one contiguous run per
    worker thread; while they run, the BLAS library is held to one thread per call, so
    that each worker's matrix products stay on its own core.
    """
    bounds = chunk_bounds(batch, chunk)
    workers = min(get_num_threads(), len(bounds))
    if workers <= 1:
        return [work(start, stop) for start, stop in bounds]

    def run(first, last):
        return [work(start, stop) for start, stop in bounds[first:last]]

    pool = _executor()
    # an even split of the chunks: worker i gets chunks [splits[i], splits[i + 1])
    splits = [len(bounds) * i // workers for i in range(workers + 1)]
    with _blas_on_one_thread():
        futures = [pool.submit(run, a, b) for a, b in zip(splits, splits[1:])]
        return [result for future in futures for result in future.result()]
