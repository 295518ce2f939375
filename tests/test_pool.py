"""Pooling: float64 gradchecks, PyTorch parity and input errors, on the shared grid, per backend."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import tinyres as tr
import tinyres.functional as F
from conftest import assert_close, to_torch
from grids import POOL_GRID, case_id

POOLS = {"max": (F.max_pool2d, TF.max_pool2d), "avg": (F.avg_pool2d, TF.avg_pool2d)}


def _input(case, dtype, rng, distinct=True):
    batch, channels, height, width = case[:4]
    if distinct:
        # distinct values, well separated: finite differences never flip a window's arg-max
        values = rng.permutation(batch * channels * height * width).astype(dtype) * 0.1
        return values.reshape(batch, channels, height, width)
    return rng.standard_normal((batch, channels, height, width)).astype(dtype)


@pytest.mark.parametrize("kind", POOLS)
@pytest.mark.parametrize("case", POOL_GRID, ids=case_id)
def test_pool_gradcheck(kind, case, backend, rng):
    kernel, stride, padding = case[4:]
    x = tr.tensor(_input(case, np.float64, rng), requires_grad=True)
    tr.gradcheck(lambda x: POOLS[kind][0](x, kernel, stride, padding), [x])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kind", POOLS)
@pytest.mark.parametrize("case", POOL_GRID, ids=case_id)
def test_pool_matches_torch(kind, case, dtype, backend, rng):
    kernel, stride, padding = case[4:]
    data = _input(case, dtype, rng, distinct=False)
    x, reference_x = tr.tensor(data, requires_grad=True), to_torch(data, requires_grad=True)
    out = POOLS[kind][0](x, kernel, stride, padding)
    reference = POOLS[kind][1](reference_x, kernel, stride, padding)
    assert_close(out, reference, dtype)
    seed = rng.standard_normal(out.shape).astype(dtype)
    out.backward(seed)
    reference.backward(torch.tensor(seed))
    assert_close(x.grad, reference_x.grad, dtype)


def test_max_pool_ties_send_the_gradient_to_the_first_maximum(backend):
    x = tr.tensor(np.ones((1, 1, 2, 2)), requires_grad=True)
    F.max_pool2d(x, 2).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy()[0, 0], [[1.0, 0.0], [0.0, 0.0]])


def test_stride_defaults_to_kernel_size(backend):
    x = tr.tensor(np.arange(16.0).reshape(1, 1, 4, 4))
    np.testing.assert_array_equal(F.max_pool2d(x, 2).numpy()[0, 0], [[5.0, 7.0], [13.0, 15.0]])
    np.testing.assert_array_equal(F.avg_pool2d(x, 2).numpy()[0, 0], [[2.5, 4.5], [10.5, 12.5]])


def test_adaptive_avg_pool_is_the_channel_mean(backend, rng):
    data = rng.standard_normal((2, 3, 5, 4))
    x = tr.tensor(data, requires_grad=True)
    out = F.adaptive_avg_pool2d(x, 1)
    assert out.shape == (2, 3, 1, 1)
    assert_close(out, TF.adaptive_avg_pool2d(torch.tensor(data), 1), np.float64)
    tr.gradcheck(lambda x: F.adaptive_avg_pool2d(x, (1, 1)), [x])


@pytest.mark.parametrize("call, message", [
    (lambda x: F.max_pool2d(x[0], 2), r"max_pool2d: input must have 4 dimensions"),
    (lambda x: F.max_pool2d(x, 3, padding=2), r"max_pool2d: padding \(2, 2\) must be at most half"),
    (lambda x: F.avg_pool2d(x, 9), r"avg_pool2d: the kernel spans 9x9 .* padded input is only 4x4"),
    (lambda x: F.avg_pool2d(x, 2, stride=0), r"avg_pool2d: stride must be"),
    (lambda x: F.max_pool2d(x, 2, padding=-1), r"max_pool2d: padding must be"),
    (lambda x: F.adaptive_avg_pool2d(x, 2), r"adaptive_avg_pool2d: only output_size=1"),
])
def test_pool_bad_input(call, message):
    x = tr.tensor(np.ones((1, 1, 4, 4)))
    with pytest.raises(ValueError, match=message):
        call(x)


def test_pool_rejects_integer_input():
    with pytest.raises(TypeError, match="max_pool2d: input must be float32 or float64"):
        F.max_pool2d(tr.tensor(np.ones((1, 1, 4, 4), dtype=np.int32)), 2)


@pytest.mark.parametrize("call, message", [
    (lambda x: F.max_pool2d(x, 2, ceil_mode=True), r"ceil_mode=True is not supported .* round down"),
    (lambda x: F.max_pool2d(x, 2, dilation=2), r"dilation=\(2, 2\) is not supported .* contiguous"),
    (lambda x: F.max_pool2d(x, 2, return_indices=True), r"return_indices=True is not supported"),
    (lambda x: F.avg_pool2d(x, 2, ceil_mode=True), r"ceil_mode=True is not supported"),
    (lambda x: F.avg_pool2d(x, 2, count_include_pad=False), r"count_include_pad=False is not supported .* divisor"),
    (lambda x: F.avg_pool2d(x, 2, divisor_override=3), r"divisor_override=3 is not supported .* R\*S"),
])
def test_pool_refuses_the_options_it_lacks_by_name(call, message):
    # PyTorch's signature is accepted whole, so a call written for PyTorch never runs
    # with an option silently dropped
    with pytest.raises(ValueError, match=r"^(max|avg)_pool2d: " + message):
        call(tr.tensor(np.ones((1, 1, 4, 4))))


@pytest.mark.parametrize("kind", POOLS)
def test_pool_takes_pytorchs_options_at_their_defaults_and_one_element_tuples(kind, backend, rng):
    data = rng.standard_normal((2, 3, 7, 6))
    defaults = {"max": dict(dilation=1, ceil_mode=False, return_indices=False),
                "avg": dict(ceil_mode=False, count_include_pad=True, divisor_override=None)}[kind]
    ours, theirs = POOLS[kind]
    x = tr.tensor(data, requires_grad=True)
    out = ours(x, (3,), (2,), (1,), **defaults)       # (v,) means (v, v), as in PyTorch
    assert_close(out, theirs(torch.tensor(data), (3,), (2,), (1,), **defaults), np.float64)
    tr.gradcheck(lambda x: ours(x, (3,), (2,), (1,), **defaults), [x])
