"""MPI collectives for data-parallel training, on mpi4py: init, rank, all_reduce, broadcast.

    import tinyres.distributed as dist
    dist.init()                       # under mpiexec: the launched ranks; plain python: a world of one
    dist.rank(), dist.world_size()
    dist.all_reduce(grad, op="sum")   # in place, on the array's own buffer: never pickled
    dist.broadcast(weights, root=0)   # in place: every rank ends with rank 0's values

Every rank runs the same script (SPMD), as with Horovod or ChainerMN; the collectives are
MPI's buffer ones (``Allreduce``, ``Bcast``), which move raw memory and so beat mpi4py's
pickling lower-case ``allreduce`` on arrays (measured: docs/results/measurements.md).
CuPy arrays go through host memory: they are copied to the host, reduced there and copied
back, which costs two transfers per call; a CUDA-aware MPI would avoid them, and tinyres
does not assume one.
"""
import os

import numpy as np

from .backend import is_gpu_array

PIP_LINE = "pip install 'tinyres[mpi]'   (mpi4py and the mpich runtime)"
# variables that MPI launchers set in every rank they start
LAUNCHER_VARIABLES = ("PMI_SIZE", "PMI_RANK", "OMPI_COMM_WORLD_SIZE", "MPI_LOCALNRANKS")
OPS = ("sum", "mean", "max", "min")

_world = None   # the communicator once init() ran; None for a world of one without mpi4py


class DistributedUnavailableError(RuntimeError):
    """MPI is needed (several ranks were launched or asked for) but mpi4py cannot be imported."""


class _WorldOfOne:
    """What a plain ``python`` run without mpi4py sees: one rank, collectives that change nothing."""

    def Get_rank(self):
        return 0

    def Get_size(self):
        return 1

    def Barrier(self):
        pass


def launched_by_mpi():
    """True when this process was started by an MPI launcher (``mpiexec -n N``)."""
    return any(name in os.environ for name in LAUNCHER_VARIABLES)


def _import_mpi():
    try:
        from mpi4py import MPI
    except ImportError as error:
        raise DistributedUnavailableError(
            f"tinyres.distributed needs mpi4py, which cannot be imported ({error}); "
            f"install it with: {PIP_LINE}") from error
    return MPI


def init():
    """Join the MPI world (idempotent).  Returns ``(rank, world_size)``.

    Under ``mpiexec`` every rank joins ``MPI.COMM_WORLD``.  A plain ``python`` run is a
    world of one: with mpi4py it is MPI's singleton, without mpi4py no MPI at all.
    """
    global _world
    if _world is None:
        try:
            _world = _import_mpi().COMM_WORLD
        except DistributedUnavailableError:
            if launched_by_mpi():
                raise
            _world = _WorldOfOne()
    return rank(), world_size()


def _communicator():
    if _world is None:
        init()
    return _world


def rank():
    """This process's number, 0 to world_size() - 1 (rank 0 writes the files)."""
    return _communicator().Get_rank()


def world_size():
    """How many processes train together."""
    return _communicator().Get_size()


def barrier():
    """Wait until every rank has arrived here."""
    _communicator().Barrier()


def _check_buffer(function, array):
    if not (isinstance(array, np.ndarray) or is_gpu_array(array)):
        raise TypeError(f"{function}: expected a NumPy or CuPy array, got {type(array).__name__} "
                        "(pass tensor.data for a Tensor)")
    if not array.flags.c_contiguous:
        raise ValueError(f"{function}: the array must be C-contiguous to be reduced in place; "
                         "call np.ascontiguousarray first")


def _on_host(array):
    """(host array, copy back) for a collective: CuPy arrays go through host memory."""
    if not is_gpu_array(array):
        return array, lambda: None
    host = array.get()
    return host, lambda: array.set(host)


def all_reduce(array, op="sum"):
    """Reduce ``array`` over every rank, in place: after it each rank holds the same result.

    op: ``"sum"``, ``"mean"`` (the sum divided by world_size()), ``"max"`` or ``"min"``.
    array: any shape, C-contiguous.  Returns ``array``.
    """
    if op not in OPS:
        raise ValueError(f"all_reduce: op must be one of {OPS}, got {op!r}")
    _check_buffer("all_reduce", array)
    world = _communicator()
    if world.Get_size() == 1:
        return array
    MPI = _import_mpi()
    host, copy_back = _on_host(array)
    mpi_op = {"sum": MPI.SUM, "mean": MPI.SUM, "max": MPI.MAX, "min": MPI.MIN}[op]
    world.Allreduce(MPI.IN_PLACE, host, op=mpi_op)
    if op == "mean":
        host /= world.Get_size()
    copy_back()
    return array


def broadcast(array, root=0):
    """Overwrite ``array`` on every rank with rank ``root``'s, in place.  Returns ``array``."""
    _check_buffer("broadcast", array)
    world = _communicator()
    if not 0 <= root < world.Get_size():
        raise ValueError(f"broadcast: root must be a rank in [0, {world.Get_size()}), got {root}")
    if world.Get_size() == 1:
        return array
    host, copy_back = _on_host(array)
    world.Bcast(host, root=root)
    copy_back()
    return array


def abort(message, code=1):
    """Print ``message`` and stop every rank, so none is left waiting in a collective."""
    print(f"rank {rank()}: {message}", flush=True)
    world = _communicator()
    if world.Get_size() > 1:
        world.Abort(code)
    raise SystemExit(code)
