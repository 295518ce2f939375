"""``tinyres train --workers N``: the same command as N MPI ranks under the installed ``mpiexec``.

    tinyres train --workers 2 --epochs 5     # = mpiexec -n 2 python -m tinyres.cli train --epochs 5

The launcher checks what it can before starting anything (MPI installed, the global
batch divisible by N), gives each rank its share of the cores (``TINYRES_NUM_THREADS``,
unless ``--threads`` says otherwise), starts the ranks and returns their exit status.
Each rank runs the ordinary ``tinyres train``; :func:`tinyres.experiments.run` sees the
MPI world and trains data-parallel.  A rank that fails prints its message and aborts the
world (:func:`stop_all_on_error`), so no other rank is left waiting in a collective.
"""
import contextlib
import importlib.util
import os
import pathlib
import subprocess
import sys

from . import distributed as dist
from .backend.cpu_threads import environment_with_threads



def mpiexec_path():
    """The ``mpiexec`` beside this Python (the mpich wheel puts it in the virtualenv's bin/)."""
    return pathlib.Path(sys.executable).parent / "mpiexec"


def check_workers(workers, batch_size):
    """Raise ValueError naming the flag when ``--workers`` cannot run as asked."""
    if workers < 1:
        raise ValueError(f"--workers must be >= 1, got {workers}")
    if workers == 1:
        return
    if importlib.util.find_spec("mpi4py") is None or not mpiexec_path().exists():
        raise ValueError(f"--workers {workers} needs MPI: mpi4py and {mpiexec_path()} were not "
                         f"found; install them with: {dist.PIP_LINE}")
    if batch_size % workers:
        raise ValueError(f"--batch-size {batch_size} is the global batch and must be a multiple "
                         f"of --workers {workers} (each rank takes {batch_size} / {workers})")


def without_workers_flag(argv):
    """``argv`` with ``--workers N`` (or ``--workers=N``) removed: what each rank runs."""
    kept, skip = [], False
    for argument in argv:
        if skip:
            skip = False
        elif argument == "--workers":
            skip = True
        elif not argument.startswith("--workers="):
            kept.append(argument)
    return kept


def launch(workers, argv, threads=None):
    """Run ``tinyres <argv>`` as ``workers`` MPI ranks; returns mpiexec's exit status."""
    cores = os.cpu_count() or 1
    per_rank = threads or max(1, cores // workers)
    environment = environment_with_threads(per_rank)
    command = [str(mpiexec_path()), "-n", str(workers), sys.executable, "-m", "tinyres.cli",
               *without_workers_flag(argv)]
    print(f"starting {workers} ranks with {per_rank} thread(s) each: "
          f"{' '.join(command[:3])} ... {' '.join(command[5:])}", flush=True)
    process = subprocess.Popen(command, env=environment)
    try:
        return process.wait()
    except KeyboardInterrupt:   # mpiexec passes Ctrl-C on to the ranks; wait for their report
        return process.wait()


@contextlib.contextmanager
def stop_all_on_error():
    """In a world of several ranks, turn an error on one rank into a stop of every rank.

    Without it a failing rank would exit while the others wait forever in their next
    Allreduce.  In a world of one it changes nothing.
    """
    try:
        yield
    except Exception as error:  # noqa: BLE001 -- every failure must reach the other ranks
        if not dist.launched_by_mpi() or dist.world_size() == 1:
            raise
        dist.abort(f"tinyres train failed: {type(error).__name__}: {error}")
