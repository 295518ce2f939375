"""relu: gradcheck, PyTorch parity, errors."""
import numpy as np
import pytest
import torch

import tinyres as tr
import tinyres.functional as F
from conftest import assert_close, to_torch


@pytest.mark.parametrize("shape", [(7,), (2, 3, 4, 5), (1, 1, 1, 1)], ids=str)
def test_relu_gradcheck(shape, backend, rng):
    # keep values away from the kink at 0, where the derivative does not exist
    data = rng.standard_normal(shape)
    data += np.sign(data) * 0.1
    tr.gradcheck(F.relu, [tr.tensor(data, requires_grad=True)])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_relu_matches_torch(dtype, backend, rng):
    data = rng.standard_normal((4, 3, 5, 5)).astype(dtype)
    x, reference_x = tr.tensor(data, requires_grad=True), to_torch(data, requires_grad=True)
    out, reference = F.relu(x), torch.relu(reference_x)
    assert out.dtype == dtype
    assert_close(out, reference, dtype)
    seed = rng.standard_normal(out.shape).astype(dtype)
    out.backward(seed)
    reference.backward(torch.tensor(seed))
    assert x.grad.dtype == dtype
    assert_close(x.grad, reference_x.grad, dtype)


def test_relu_rejects_non_tensors_and_integers():
    with pytest.raises(TypeError, match="relu: input must be a tinyres Tensor"):
        F.relu(np.ones(3))
    with pytest.raises(TypeError, match="relu: input must be float32 or float64"):
        F.relu(tr.tensor(np.ones(3, dtype=np.int64)))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_relu_at_nan_infinities_and_zero_matches_torch(dtype, backend, rng):
    # PyTorch zeroes the gradient where the output is <= 0, so a NaN input (whose output
    # is NaN, and NaN <= 0 is false) passes its gradient through; at exactly 0 it is 0
    data = np.array([np.nan, -np.nan, np.inf, -np.inf, 0.0, -0.0, 1.5, -2.5], dtype=dtype)
    x, reference_x = tr.tensor(data, requires_grad=True), to_torch(data, requires_grad=True)
    out, reference = F.relu(x), torch.relu(reference_x)
    np.testing.assert_array_equal(out.numpy(), reference.detach().numpy())   # NaN == NaN here
    seed = rng.standard_normal(data.shape).astype(dtype)
    out.backward(seed)
    reference.backward(torch.tensor(seed))
    np.testing.assert_array_equal(x.grad.numpy(), reference_x.grad.numpy())
    np.testing.assert_array_equal(x.grad.numpy()[:2], seed[:2])


def test_relu_refuses_inplace():
    with pytest.raises(ValueError, match="relu: inplace=True is not supported .* new tensor"):
        F.relu(tr.tensor(np.ones(3)), inplace=True)
