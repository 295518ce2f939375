"""The Numba kernels agree with the NumPy reference kernels, element for element.

``numpy_kernels`` is the definition; ``numba_kernels`` must return the same shapes,
dtypes and values (conftest's KERNEL_RTOL: float64 to 1e-12, float32 to 1e-5) on the
kernel grids of ``tests/grids.py``, which walk every kernel size, stride, padding and
dilation, odd and even image sizes, batch 1 and batch > 1.  They are denser than the op
grids because a kernel call on a tiny array costs microseconds once compiled;
compilation happens once per dtype.
"""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from conftest import DTYPES, KERNEL_RTOL, assert_kernel_matches
from grids import (KERNEL_CONV_GRID, KERNEL_NORM_SHAPES, KERNEL_POOL_GRID, KERNEL_RELU_SHAPES,
                   case_id)

pytest.importorskip("numba", reason="numba is not installed: the numba backend cannot run here")

from tinyres.backend import numba_kernels, numpy_kernels  # noqa: E402


def test_module_identity():
    assert numba_kernels.xp is np
    assert numba_kernels.name == "numba"


# --------------------------------------------------------------------------- im2col / col2im
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", KERNEL_CONV_GRID, ids=case_id)
def test_im2col_and_col2im_match_reference(case, dtype, rng):
    x_shape, *geometry = case
    x = rng.standard_normal(x_shape).astype(dtype)
    cols = numba_kernels.im2col(x, *geometry)
    assert_kernel_matches(cols, numpy_kernels.im2col(x, *geometry), f"im2col {case}",
                          exact=True)                                   # a pure copy

    grad_cols = rng.standard_normal(cols.shape).astype(dtype)
    assert_kernel_matches(numba_kernels.col2im(grad_cols, x_shape, *geometry),
                          numpy_kernels.col2im(grad_cols, x_shape, *geometry), f"col2im {case}")


def test_im2col_and_col2im_accept_non_contiguous_inputs(rng):
    x = rng.standard_normal((5, 4, 3, 6)).transpose(1, 0, 3, 2)      # (4, 5, 6, 3), strided
    geometry = ((3, 2), (1, 2), (1, 1), (2, 1))
    cols = numpy_kernels.im2col(x, *geometry)
    assert_kernel_matches(numba_kernels.im2col(x, *geometry), cols, "im2col of a strided view",
                          exact=True)
    grad_cols = rng.standard_normal(cols.shape[::-1]).T                 # a transposed view
    assert_kernel_matches(numba_kernels.col2im(grad_cols, x.shape, *geometry),
                          numpy_kernels.col2im(grad_cols, x.shape, *geometry),
                          "col2im of a transposed view")


# --------------------------------------------------------------------------- conv2d
@pytest.mark.parametrize("need", [(True, True), (True, False), (False, True)])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", KERNEL_CONV_GRID[::3], ids=case_id)
def test_conv2d_kernels_match_reference(case, dtype, need, rng):
    """The whole convolution, whichever path the Numba backend takes, equals the textbook's."""
    x_shape, kernel_size, stride, padding, dilation = case
    x = rng.standard_normal(x_shape).astype(dtype)
    weight = rng.standard_normal((3, x_shape[1], *kernel_size)).astype(dtype)
    out = numba_kernels.conv2d_forward(x, weight, stride, padding, dilation)
    assert_kernel_matches(out, numpy_kernels.conv2d_forward(x, weight, stride, padding, dilation),
                          f"conv2d_forward {case}")
    grad_output = rng.standard_normal(out.shape).astype(dtype)
    ours = numba_kernels.conv2d_backward(grad_output, x, weight, stride, padding, dilation, *need)
    expected = numpy_kernels.conv2d_backward(grad_output, x, weight, stride, padding, dilation,
                                             *need)
    for label, mine, theirs, wanted in zip(("dx", "dweight"), ours, expected, need):
        if wanted:
            assert_kernel_matches(mine, theirs, f"conv2d_backward {label} {case}")
        else:
            assert mine is None and theirs is None


# --------------------------------------------------------------------------- pooling
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", KERNEL_POOL_GRID, ids=case_id)
def test_max_pool_matches_reference(case, dtype, rng):
    x_shape, *geometry = case
    # small integers: many ties, so "the first maximum" is really tested
    x = rng.integers(-3, 4, size=x_shape).astype(dtype)
    out, argmax = numba_kernels.max_pool2d_forward(x, *geometry)
    expected_out, expected_argmax = numpy_kernels.max_pool2d_forward(x, *geometry)
    assert_kernel_matches(out, expected_out, f"max_pool2d out {case}", exact=True)
    assert expected_argmax.dtype == np.int32
    assert_kernel_matches(argmax, expected_argmax, f"max_pool2d argmax {case}", exact=True)

    grad_output = rng.standard_normal(out.shape).astype(dtype)
    assert_kernel_matches(
        numba_kernels.max_pool2d_backward(grad_output, argmax, x_shape, *geometry),
        numpy_kernels.max_pool2d_backward(grad_output, expected_argmax, x_shape, *geometry),
        f"max_pool2d_backward {case}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", KERNEL_POOL_GRID, ids=case_id)
def test_avg_pool_matches_reference(case, dtype, rng):
    x_shape, *geometry = case
    x = rng.standard_normal(x_shape).astype(dtype)
    out = numba_kernels.avg_pool2d_forward(x, *geometry)
    assert_kernel_matches(out, numpy_kernels.avg_pool2d_forward(x, *geometry),
                          f"avg_pool2d_forward {case}")

    grad_output = rng.standard_normal(out.shape).astype(dtype)
    assert_kernel_matches(numba_kernels.avg_pool2d_backward(grad_output, x_shape, *geometry),
                          numpy_kernels.avg_pool2d_backward(grad_output, x_shape, *geometry),
                          f"avg_pool2d_backward {case}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_pool_padding_never_wins_even_against_minus_infinity(dtype):
    x = np.full((1, 1, 3, 3), -np.inf, dtype=dtype)
    x[0, 0, 2, 2] = -5.0
    for kernels in (numba_kernels, numpy_kernels):
        out, argmax = kernels.max_pool2d_forward(x, (3, 3), (1, 1), (1, 1))
        assert out[0, 0, 0, 0] == -np.inf and argmax[0, 0, 0, 0] == 0   # all -inf: first tap
        assert out[0, 0, 2, 2] == -5.0 and argmax[0, 0, 2, 2] == 4        # centre tap wins


# --------------------------------------------------------------------------- batch norm
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", KERNEL_NORM_SHAPES, ids=case_id)
def test_batch_norm_matches_reference(shape, dtype, rng):
    channels = shape[1]
    x = (rng.standard_normal(shape) * 3 + 2).astype(dtype)
    weight = rng.standard_normal(channels).astype(dtype)
    bias = rng.standard_normal(channels).astype(dtype)
    results = numba_kernels.batch_norm_forward_train(x, weight, bias, 1e-5)
    expected = numpy_kernels.batch_norm_forward_train(x, weight, bias, 1e-5)
    for label, actual, wanted in zip(("y", "mean", "var", "inv_std"), results, expected):
        assert_kernel_matches(actual, wanted, f"batch_norm_forward_train {label} {shape}")

    _, mean, _, inv_std = expected
    grad_output = rng.standard_normal(shape).astype(dtype)
    results = numba_kernels.batch_norm_backward(grad_output, x, mean, inv_std, weight)
    expected = numpy_kernels.batch_norm_backward(grad_output, x, mean, inv_std, weight)
    for label, actual, wanted in zip(("dx", "dweight", "dbias"), results, expected):
        assert_kernel_matches(actual, wanted, f"batch_norm_backward {label} {shape}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_batch_norm_statistics_survive_a_large_mean(dtype, rng):
    """Mean 1000, std 0.01: a plain sum-of-squares variance would lose every digit.

    Judged against the float64 reference on the same values, so float32 is held to
    the true statistics rather than to the reference's own float32 rounding."""
    x = (1000 + 0.01 * rng.standard_normal((16, 3, 9, 7))).astype(dtype)
    ones, zeros = np.ones(3, dtype), np.zeros(3, dtype)
    _, mean, var, _ = numba_kernels.batch_norm_forward_train(x, ones, zeros, 1e-5)
    truth = numpy_kernels.batch_norm_forward_train(x.astype(np.float64), ones, zeros, 1e-5)
    np.testing.assert_allclose(mean, truth[1], rtol=KERNEL_RTOL[dtype])
    np.testing.assert_allclose(var, truth[2], rtol=KERNEL_RTOL[dtype])


# --------------------------------------------------------------------------- relu
@pytest.fixture(params=["one core", "three blocks"])
def relu_path(request, monkeypatch):
    """Run ReLU serially (as on the grid's small arrays) or as a parallel loop over blocks."""
    if request.param == "three blocks":             # most sizes split into unequal blocks
        monkeypatch.setattr(numba_kernels, "_relu_blocks", lambda size: 3)
    return request.param


def test_relu_goes_parallel_only_for_large_arrays_and_several_threads(threads):
    threads(2)
    large = numba_kernels.RELU_PARALLEL_SIZE
    assert numba_kernels._relu_blocks(large - 1) == 1
    assert numba_kernels._relu_blocks(large) == min(2, numba_kernels.numba.config.NUMBA_NUM_THREADS)
    threads(1)
    assert numba_kernels._relu_blocks(large) == 1


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", KERNEL_RELU_SHAPES, ids=case_id)
def test_relu_matches_reference(shape, dtype, rng, relu_path):
    x = np.asarray(rng.standard_normal(shape), dtype=dtype)
    flat = x.reshape(-1)                              # a view: edits below reach x
    flat[::5] = 0.0                                   # exact zeros: the gradient there is 0
    flat[1::7] = np.nan                               # NaN passes through, as np.maximum
    out = numba_kernels.relu_forward(x)
    expected_out = numpy_kernels.relu_forward(x)
    assert expected_out.shape == x.shape and expected_out.dtype == x.dtype
    assert_kernel_matches(out, expected_out, f"relu_forward {shape}", exact=True)

    grad_output = np.asarray(rng.standard_normal(shape), dtype=dtype)
    assert_kernel_matches(numba_kernels.relu_backward(grad_output, out),
                          numpy_kernels.relu_backward(grad_output, out),
                          f"relu_backward {shape}", exact=True)


def test_relu_accepts_a_non_contiguous_input(rng):
    x = rng.standard_normal((6, 5)).T
    assert_kernel_matches(numba_kernels.relu_forward(x), numpy_kernels.relu_forward(x),
                          "relu_forward of a transposed view", exact=True)


# --------------------------------------------------------------------------- compile cache
_FIRST_CONV = textwrap.dedent("""
    import json, time
    import numpy as np
    from tinyres.backend import numba_kernels as kernels
    x = np.ones((8, 16, 32, 32), dtype=np.float32)
    start = time.perf_counter()
    cols = kernels.im2col(x, (3, 3), (1, 1), (1, 1), (1, 1))
    kernels.col2im(cols, x.shape, (3, 3), (1, 1), (1, 1), (1, 1))
    seconds = time.perf_counter() - start
    stats = [kernels._im2col_njit.stats, kernels._col2im_njit.stats]
    print(json.dumps({"seconds": seconds,
                      "hits": sum(sum(s.cache_hits.values()) for s in stats),
                      "misses": sum(sum(s.cache_misses.values()) for s in stats)}))
""")


def _first_conv_in_a_fresh_process(cache_dir):
    """Run one conv-sized im2col + col2im in a new interpreter that caches into ``cache_dir``."""
    package_root = os.path.dirname(os.path.dirname(os.path.dirname(numba_kernels.__file__)))
    python_path = [package_root] + [p for p in [os.environ.get("PYTHONPATH")] if p]
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir), PYTHONPATH=os.pathsep.join(python_path))
    result = subprocess.run([sys.executable, "-c", _FIRST_CONV], env=env, cwd=package_root,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_compiled_kernels_are_cached_on_disk(tmp_path):
    """cache=True: the first process compiles and writes the cache, the second loads it."""
    cold = _first_conv_in_a_fresh_process(tmp_path)
    assert cold["misses"] > 0 and cold["hits"] == 0
    written = [name for _, _, files in os.walk(tmp_path) for name in files]
    assert any(name.endswith(".nbi") for name in written), written   # the index
    assert any(name.endswith(".nbc") for name in written), written   # the machine code

    warm = _first_conv_in_a_fresh_process(tmp_path)
    assert warm["hits"] > 0 and warm["misses"] == 0
    assert warm["seconds"] < cold["seconds"]
