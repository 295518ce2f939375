"""The CuPy kernels (``backend/cupy_kernels.py``) agree with the NumPy reference.

Every kernel runs on the GPU over the kernel grids of ``tests/grids.py`` and its result,
copied back with ``.get()``, must match ``numpy_kernels`` on the same input: to rounding
for sums (conftest's KERNEL_RTOL: float64 1e-12, float32 1e-5 relative), exactly for
copies, maxima, argmax and relu.  The whole module is skipped, with the reason, on a
machine without cupy or without a CUDA device.
"""
import functools
import inspect

import numpy as np
import pytest

from conftest import DTYPES, assert_kernel_matches
from grids import (KERNEL_NORM_SHAPES, KERNEL_RELU_SHAPES, case_id, conv_geometries_for,
                   pool_geometries_for)
from tinyres.backend import why_unavailable
from tinyres.backend import numpy_kernels as reference
from tinyres.backend.shapes import conv_output_size

_reason = why_unavailable("cupy")
if _reason is not None:
    pytest.skip(f"cupy backend unavailable: {_reason}", allow_module_level=True)

import cupy  # noqa: E402  (only importable past the skip)

from tinyres.backend import cupy_kernels as gpu  # noqa: E402

# a GPU kernel leaves its result on the device: a cupy array, compared after .get()
assert_gpu_matches = functools.partial(assert_kernel_matches, array_type=cupy.ndarray)

# One image for every case (odd height, even width, so a swapped h/w shows up): the GPU
# tests take the geometries of the shared kernel grids that fit it.
X_SHAPE = (2, 3, 9, 8)
CONV_CASES = conv_geometries_for(X_SHAPE)
POOL_CASES = pool_geometries_for(X_SHAPE)


def test_module_identity_and_signatures():
    assert gpu.xp is cupy and gpu.name == "cupy"
    for function_name, function in inspect.getmembers(reference, inspect.isfunction):
        if function_name.startswith("_"):
            continue
        assert hasattr(gpu, function_name), f"cupy_kernels lacks {function_name}"
        assert inspect.signature(getattr(gpu, function_name)) == inspect.signature(function), \
            f"{function_name}: signature differs from numpy_kernels"


# --------------------------------------------------------------------------- im2col / col2im
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CONV_CASES, ids=case_id)
def test_im2col(case, dtype, rng):
    kernel_size, stride, padding, dilation = case
    x = rng.normal(size=X_SHAPE).astype(dtype)
    expected = reference.im2col(x, kernel_size, stride, padding, dilation)
    actual = gpu.im2col(cupy.asarray(x), kernel_size, stride, padding, dilation)
    assert_gpu_matches(actual, expected, f"im2col {case}", exact=True)   # a pure copy


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CONV_CASES, ids=case_id)
def test_col2im(case, dtype, rng):
    kernel_size, stride, padding, dilation = case
    out_h, out_w = (conv_output_size(X_SHAPE[2 + axis], kernel_size[axis], stride[axis],
                                     padding[axis], dilation[axis]) for axis in (0, 1))
    rows = X_SHAPE[1] * kernel_size[0] * kernel_size[1]
    cols = rng.normal(size=(rows, X_SHAPE[0] * out_h * out_w)).astype(dtype)
    expected = reference.col2im(cols, X_SHAPE, kernel_size, stride, padding, dilation)
    actual = gpu.col2im(cupy.asarray(cols), X_SHAPE, kernel_size, stride, padding, dilation)
    assert_gpu_matches(actual, expected, f"col2im {case}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_im2col_of_a_strided_view(dtype, rng):
    # a transposed view is not C-contiguous: the kernel must index by shape, not by memory
    x = rng.normal(size=(2, 3, 8, 9)).astype(dtype)
    view = x.transpose(0, 1, 3, 2)
    geometry = ((3, 3), (2, 1), (1, 1), (1, 2))
    expected = reference.im2col(view, *geometry)
    actual = gpu.im2col(cupy.asarray(x).transpose(0, 1, 3, 2), *geometry)
    assert_gpu_matches(actual, expected, "im2col of a transposed view", exact=True)


# --------------------------------------------------------------------------- conv2d
# every other geometry: a whole forward and backward costs more than one im2col
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CONV_CASES[::2], ids=case_id)
def test_conv2d_forward_and_backward(case, dtype, rng):
    kernel_size, stride, padding, dilation = case
    x = rng.standard_normal(X_SHAPE).astype(dtype)
    weight = rng.standard_normal((4, X_SHAPE[1], *kernel_size)).astype(dtype)
    expected = reference.conv2d_forward(x, weight, stride, padding, dilation)
    out = gpu.conv2d_forward(cupy.asarray(x), cupy.asarray(weight), stride, padding, dilation)
    assert_gpu_matches(out, expected, "conv2d_forward")
    grad_output = rng.standard_normal(expected.shape).astype(dtype)
    dx, dweight = gpu.conv2d_backward(cupy.asarray(grad_output), cupy.asarray(x),
                                      cupy.asarray(weight), stride, padding, dilation)
    expected_dx, expected_dweight = reference.conv2d_backward(grad_output, x, weight, stride,
                                                              padding, dilation)
    assert_gpu_matches(dx, expected_dx, "conv2d_backward dx")
    assert_gpu_matches(dweight, expected_dweight, "conv2d_backward dweight")


# --------------------------------------------------------------------------- pooling
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", POOL_CASES, ids=case_id)
def test_max_pool2d_forward(case, dtype, rng):
    # small integers make many ties, so "argmax is the FIRST maximum" is really tested
    x = rng.integers(-3, 4, size=X_SHAPE).astype(dtype)
    expected_out, expected_argmax = reference.max_pool2d_forward(x, *case)
    out, argmax = gpu.max_pool2d_forward(cupy.asarray(x), *case)
    assert_gpu_matches(out, expected_out, f"max_pool2d out {case}", exact=True)
    assert_gpu_matches(argmax, expected_argmax, f"max_pool2d argmax {case}", exact=True)


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_pool2d_forward_negative_inputs_beat_padding(dtype, rng):
    # every value is negative, so a zero (rather than -inf) padding would win the border windows
    x = -rng.uniform(1, 2, size=X_SHAPE).astype(dtype)
    expected_out, expected_argmax = reference.max_pool2d_forward(x, (3, 3), (2, 2), (1, 1))
    out, argmax = gpu.max_pool2d_forward(cupy.asarray(x), (3, 3), (2, 2), (1, 1))
    assert_gpu_matches(out, expected_out, "max_pool2d out, negative inputs", exact=True)
    assert_gpu_matches(argmax, expected_argmax, "max_pool2d argmax, negative inputs", exact=True)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", POOL_CASES, ids=case_id)
def test_max_pool2d_backward(case, dtype, rng):
    x = rng.integers(-3, 4, size=X_SHAPE).astype(dtype)
    _, argmax = reference.max_pool2d_forward(x, *case)
    grad_output = rng.normal(size=argmax.shape).astype(dtype)
    expected = reference.max_pool2d_backward(grad_output, argmax, X_SHAPE, *case)
    actual = gpu.max_pool2d_backward(cupy.asarray(grad_output), cupy.asarray(argmax), X_SHAPE, *case)
    assert_gpu_matches(actual, expected, f"max_pool2d_backward {case}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", POOL_CASES, ids=case_id)
def test_avg_pool2d_forward(case, dtype, rng):
    x = rng.normal(size=X_SHAPE).astype(dtype)
    expected = reference.avg_pool2d_forward(x, *case)
    actual = gpu.avg_pool2d_forward(cupy.asarray(x), *case)
    assert_gpu_matches(actual, expected, f"avg_pool2d_forward {case}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", POOL_CASES, ids=case_id)
def test_avg_pool2d_backward(case, dtype, rng):
    out_shape = reference.avg_pool2d_forward(np.zeros(X_SHAPE), *case).shape
    grad_output = rng.normal(size=out_shape).astype(dtype)
    expected = reference.avg_pool2d_backward(grad_output, X_SHAPE, *case)
    actual = gpu.avg_pool2d_backward(cupy.asarray(grad_output), X_SHAPE, *case)
    assert_gpu_matches(actual, expected, f"avg_pool2d_backward {case}")


# --------------------------------------------------------------------------- batch norm
def _batch_norm_inputs(shape, dtype, rng):
    # an offset mean and a non-unit spread, so centring and scaling both matter
    x = rng.normal(loc=3.0, scale=2.0, size=shape).astype(dtype)
    weight = rng.normal(size=shape[1]).astype(dtype)
    bias = rng.normal(size=shape[1]).astype(dtype)
    return x, weight, bias


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", KERNEL_NORM_SHAPES, ids=case_id)
def test_batch_norm_forward_train(shape, dtype, rng):
    x, weight, bias = _batch_norm_inputs(shape, dtype, rng)
    expected = reference.batch_norm_forward_train(x, weight, bias, 1e-5)
    actual = gpu.batch_norm_forward_train(cupy.asarray(x), cupy.asarray(weight),
                                          cupy.asarray(bias), 1e-5)
    for label, got, want in zip(("y", "mean", "var", "inv_std"), actual, expected):
        assert_gpu_matches(got, want, f"batch_norm_forward_train {label} {shape}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", KERNEL_NORM_SHAPES, ids=case_id)
def test_batch_norm_backward(shape, dtype, rng):
    x, weight, bias = _batch_norm_inputs(shape, dtype, rng)
    _, mean, _, inv_std = reference.batch_norm_forward_train(x, weight, bias, 1e-5)
    grad_output = rng.normal(size=shape).astype(dtype)
    expected = reference.batch_norm_backward(grad_output, x, mean, inv_std, weight)
    inputs = (grad_output, x, mean, inv_std, weight)
    actual = gpu.batch_norm_backward(*(cupy.asarray(a) for a in inputs))
    for label, got, want in zip(("dx", "dweight", "dbias"), actual, expected):
        assert_gpu_matches(got, want, f"batch_norm_backward {label} {shape}")


# --------------------------------------------------------------------------- relu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", KERNEL_RELU_SHAPES, ids=case_id)
def test_relu_forward_and_backward(shape, dtype, rng):
    x = np.asarray(rng.normal(size=shape), dtype=dtype)
    flat = x.reshape(-1)              # a view: edits below reach x
    flat[::5] = 0.0                   # exact zeros: relu'(0) is 0, as the reference
    flat[1::7] = np.nan               # NaN passes forward, and lets the gradient through
    grad_output = np.asarray(rng.normal(size=shape), dtype=dtype)
    out = reference.relu_forward(x)
    assert_gpu_matches(gpu.relu_forward(cupy.asarray(x)), out, f"relu_forward {shape}",
                       exact=True)
    assert_gpu_matches(gpu.relu_backward(cupy.asarray(grad_output), cupy.asarray(out)),
                       reference.relu_backward(grad_output, out), f"relu_backward {shape}",
                       exact=True)


@pytest.mark.parametrize("dtype", DTYPES)
def test_relu_of_a_strided_view(dtype, rng):
    x = rng.normal(size=(3, 4, 5)).astype(dtype)
    expected = reference.relu_forward(x.transpose(2, 0, 1))
    actual = gpu.relu_forward(cupy.asarray(x).transpose(2, 0, 1))
    assert_gpu_matches(actual, expected, "relu_forward of a transposed view", exact=True)
