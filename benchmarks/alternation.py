"""Time several implementations of one computation call by call in turn, each on fresh inputs.

Why in turn?  On a shared machine the noise comes in bursts; calls of tinyres and PyTorch
taken alternately meet the same bursts, so their ratio survives one.

Why fresh inputs?  One call repeated on the same arrays finds them in the caches, and
finds a memory allocator primed for exactly those sizes: that flatters whoever caches
most.  Every call here gets arrays of its own, made before the clock starts.  They are made
a few calls ahead, in the order the calls will use them, so that no implementation finds
its inputs any warmer in the caches than the others do.

Why a pause between calls?  PyTorch's OpenMP threads keep spinning on the cores for some
milliseconds after a call returns, and slow whatever runs next; a short sleep, outside the
timed region, lets them go to sleep first.  OpenBLAS's threads spin for about 0.1 s by
default, too long to wait out after every call: the benchmarks shorten that spin instead
(``idle_threads.py``).
"""
import contextlib
import dataclasses
import time
from typing import Any, Callable, ContextManager

import numpy as np

PAUSE_SECONDS = 0.010      # enough, on the development machine, for spinning threads to sleep
PREPARED_AHEAD = 4         # input sets made per implementation before a run of calls


@dataclasses.dataclass
class Contender:
    """One implementation to time: how to make its inputs and how to call it.

    prepare() -> inputs makes one fresh set of inputs (untimed); run(inputs) is the timed
    call; synchronize() waits for an accelerator to finish; context() is entered around
    both (a tinyres backend, for instance).
    """
    name: str
    prepare: Callable[[], Any]
    run: Callable[[Any], Any]
    synchronize: Callable[[], None] = lambda: None
    context: Callable[[], ContextManager] = contextlib.nullcontext


def random_array(rng, shape):
    """Fresh float32 values uniform in [-1, 1): both signs, which max-pool and ReLU branch on.

    Uniform rather than normal because NumPy draws it three to four times faster, and one
    run of the benchmarks makes gigabytes of inputs.  shape -> an array of that shape.
    """
    values = rng.random(shape, dtype=np.float32)
    values *= 2
    values -= 1
    return values


def timed_call(contender, inputs):
    """Milliseconds of one ``contender.run(inputs)``, waiting for the accelerator if any."""
    start = time.perf_counter()
    result = contender.run(inputs)
    contender.synchronize()
    elapsed = (time.perf_counter() - start) * 1e3
    del result            # its memory is handed back after the clock has stopped
    return elapsed


def time_alternated(contenders, calls, warmup=1, pause=None, ahead=None, order=None):
    """Milliseconds of ``calls`` timed calls of each contender, one call of each in turn.

    Round r calls contenders[0], contenders[1], ... once each, on the r-th input set of each;
    the first ``warmup`` rounds are not timed.  ``order``, a list, receives
    ``(name, round)`` for every call in the order the calls ran.  ``pause`` (seconds between
    calls) and ``ahead`` (rounds prepared at a time) default to :data:`PAUSE_SECONDS` and
    :data:`PREPARED_AHEAD`.
    Returns ``{name: [ms of each timed call]}``.
    """
    pause = PAUSE_SECONDS if pause is None else pause
    ahead = PREPARED_AHEAD if ahead is None else ahead
    times = {contender.name: [] for contender in contenders}
    rounds = warmup + calls
    for first in range(0, rounds, ahead):
        batch = range(first, min(first + ahead, rounds))
        prepared = {}
        for number in batch:                   # made in the order the calls will use them
            for contender in contenders:
                with contender.context():
                    prepared[contender.name, number] = contender.prepare()
        for number in batch:
            for contender in contenders:
                with contender.context():
                    ms = timed_call(contender, prepared.pop((contender.name, number)))
                if number >= warmup:
                    times[contender.name].append(ms)
                if order is not None:
                    order.append((contender.name, number))
                time.sleep(pause)
    return times
