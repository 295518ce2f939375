"""The chunked, threaded convolution's helpers: chunk bookkeeping, threads, BLAS limits, malloc."""
import os
import platform
import subprocess
import sys
import threading

import pytest
from threadpoolctl import threadpool_info

import tinyres as tr
from tinyres.backend import cpu_memory, cpu_threads


@pytest.mark.parametrize("count", [1, 2, 3])
def test_map_chunks_covers_the_batch_in_chunk_order(threads, count):
    threads(count)
    result = cpu_threads.map_chunks(lambda start, stop: (start, stop), batch=10, chunk=3)
    assert result == [(0, 3), (3, 6), (6, 9), (9, 10)]


def test_map_chunks_of_an_empty_batch_calls_nothing():
    assert cpu_threads.map_chunks(lambda start, stop: 1 / 0, batch=0, chunk=4) == []


def test_map_chunks_runs_the_workers_at_the_same_time(threads):
    threads(2)
    # each of the two workers waits here for the other: run one after the other, they
    # would time out instead
    meeting = threading.Barrier(2, timeout=10)
    names = cpu_threads.map_chunks(lambda start, stop: (meeting.wait(),
                                                        threading.current_thread().name)[1],
                                   batch=2, chunk=1)
    assert len(set(names)) == 2
    assert all(name.startswith("tinyres") for name in names)


def test_map_chunks_passes_a_workers_error_on(threads):
    threads(2)

    def work(start, stop):
        if start == 3:
            raise RuntimeError(f"chunk {start} failed")
        return start

    with pytest.raises(RuntimeError, match="chunk 3 failed"):
        cpu_threads.map_chunks(work, batch=4, chunk=1)


def _blas_threads():
    return {info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"}


def test_map_chunks_holds_the_blas_to_one_thread_while_it_runs(threads):
    threads(2)
    seen = cpu_threads.map_chunks(lambda start, stop: _blas_threads(), batch=4, chunk=1)
    assert seen == [{1}] * 4
    assert _blas_threads() == {2}            # restored afterwards


def test_set_num_threads_sets_numba_and_blas_too(threads):
    numba = pytest.importorskip("numba")
    threads(1)
    assert tr.get_num_threads() == 1
    assert numba.get_num_threads() == 1
    assert _blas_threads() == {1}


@pytest.mark.parametrize("count", [0, -2, 1.5, "2", True])
def test_set_num_threads_refuses_what_is_not_a_positive_integer(count):
    with pytest.raises(ValueError, match="set_num_threads: count must be an integer >= 1"):
        tr.set_num_threads(count)


def test_chunk_size_fits_the_cache_budget():
    budget = cpu_threads.CHUNK_BYTES
    assert cpu_threads.chunk_size(batch=128, bytes_per_sample=budget // 4) == 4
    assert cpu_threads.chunk_size(batch=128, bytes_per_sample=10 * budget) == 1   # never 0
    assert cpu_threads.chunk_size(batch=3, bytes_per_sample=1) == 3               # never > batch


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is a glibc function")
def test_malloc_keeps_freed_memory_on_glibc():
    assert tr.backend.MALLOC_REUSES_FREED_MEMORY is True
    assert cpu_memory.reuse_freed_memory() is True


def test_malloc_tuning_can_be_turned_off(monkeypatch):
    monkeypatch.setenv("TINYRES_MALLOC", "system")
    assert cpu_memory.reuse_freed_memory() is False
    # and a fresh process started that way leaves malloc alone from the import on
    code = "import tinyres.backend as b; print(b.MALLOC_REUSES_FREED_MEMORY)"
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={**os.environ, "TINYRES_MALLOC": "system"}, check=True)
    assert output.stdout.strip() == "False"


@pytest.mark.parametrize("value, expected", [("3", 3), (" 1 ", 1)])
def test_environment_variable_sets_the_default_thread_count(monkeypatch, value, expected):
    monkeypatch.setattr(cpu_threads, "_num_threads", None)
    monkeypatch.setenv("TINYRES_NUM_THREADS", value)
    assert tr.get_num_threads() == expected


@pytest.mark.parametrize("value", ["0", "two", "-1"])
def test_a_bad_environment_thread_count_is_refused(monkeypatch, value):
    monkeypatch.setattr(cpu_threads, "_num_threads", None)
    monkeypatch.setenv("TINYRES_NUM_THREADS", value)
    with pytest.raises(ValueError, match="TINYRES_NUM_THREADS must be an integer >= 1"):
        tr.get_num_threads()


def _conv_in_chunks(seed):
    import numpy as np
    import tinyres.functional as F
    cpu_threads.CHUNK_BYTES = 1
    x = tr.tensor(np.random.default_rng(seed).standard_normal((4, 2, 5, 5)))
    w = tr.tensor(np.ones((3, 2, 3, 3)))
    return F.conv2d(x, w, padding=1).numpy().sum()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork (POSIX)")
def test_a_forked_child_gets_a_working_pool(threads, monkeypatch):
    import multiprocessing
    threads(2)
    monkeypatch.setattr(cpu_threads, "CHUNK_BYTES", 1)
    expected = _conv_in_chunks(0)                 # the parent's pool is now running
    with multiprocessing.get_context("fork").Pool(1) as pool:
        # the child's copy of the pool has no threads; without a fresh one this would hang
        result = pool.apply_async(_conv_in_chunks, (0,)).get(timeout=60)
    assert result == expected


def test_overlapping_calls_restore_the_blas_threads_once_both_are_done(threads):
    threads(2)
    outer_running, inner_done = threading.Event(), threading.Event()
    seen = {}

    def outer_work(start, stop):
        if start == 0:          # chunk 1 returns at once, freeing a worker for the inner call
            outer_running.set()
            inner_done.wait(timeout=10)
            seen["outer, after the inner call"] = _blas_threads()
        return start

    def other_user_thread():
        # a second map_chunks that starts after the first one and ends before it
        outer_running.wait(timeout=10)
        cpu_threads.map_chunks(lambda start, stop: start, batch=2, chunk=1)
        seen["right after the inner call"] = _blas_threads()
        inner_done.set()

    helper = threading.Thread(target=other_user_thread)
    helper.start()
    assert cpu_threads.map_chunks(outer_work, batch=2, chunk=1) == [0, 1]
    helper.join(timeout=10)
    # the inner call must not restore the limit while the outer one still runs
    assert seen == {"right after the inner call": {1}, "outer, after the inner call": {1}}
    assert _blas_threads() == {2}
