"""log_softmax and cross_entropy: gradchecks, PyTorch parity, stability, errors."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import tinyres as tr
import tinyres.functional as F
from conftest import assert_close, to_torch


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_log_softmax_gradcheck_and_parity(dim, rng):
    data = rng.standard_normal((4, 5))
    x, reference_x = tr.tensor(data, requires_grad=True), to_torch(data, requires_grad=True)
    tr.gradcheck(lambda x: F.log_softmax(x, dim), [x])
    x.grad = None
    out, reference = F.log_softmax(x, dim), TF.log_softmax(reference_x, dim)
    assert_close(out, reference, np.float64)
    seed = rng.standard_normal(out.shape)
    out.backward(seed)
    reference.backward(torch.tensor(seed))
    assert_close(x.grad, reference_x.grad, np.float64)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_cross_entropy_matches_torch(dtype, rng):
    data = (3 * rng.standard_normal((6, 10))).astype(dtype)
    target = rng.integers(0, 10, size=6)
    x, reference_x = tr.tensor(data, requires_grad=True), to_torch(data, requires_grad=True)
    loss, reference = F.cross_entropy(x, target), TF.cross_entropy(reference_x, torch.tensor(target))
    assert loss.dtype == dtype and loss.shape == ()
    assert_close(loss, reference, dtype)
    loss.backward()
    reference.backward()
    assert_close(x.grad, reference_x.grad, dtype)


def test_cross_entropy_gradcheck(rng):
    x = tr.tensor(rng.standard_normal((5, 4)), requires_grad=True)
    target = tr.tensor(np.array([0, 3, 1, 1, 2]))
    tr.gradcheck(lambda x: F.cross_entropy(x, target), [x])


def test_cross_entropy_is_stable_for_huge_logits():
    logits = tr.tensor(np.array([[1000.0, 0.0], [0.0, -1000.0]], dtype=np.float32), requires_grad=True)
    loss = F.cross_entropy(logits, np.array([0, 1]))
    assert np.isfinite(loss.item()) and loss.item() == pytest.approx(500.0)
    loss.backward()
    assert np.all(np.isfinite(logits.grad.numpy()))


@pytest.mark.parametrize("target, error, message", [
    (np.array([0, 1]), ValueError, r"target must have shape \(3,\)"),
    (np.array([0.0, 1.0, 2.0]), TypeError, "integer class ids"),
    (np.array([0, 1, 4]), ValueError, r"in \[0, 4\), got values from 0 to 4"),
    (np.array([-1, 1, 2]), ValueError, r"in \[0, 4\)"),
])
def test_cross_entropy_bad_target(target, error, message):
    with pytest.raises(error, match="cross_entropy: .*" + message):
        F.cross_entropy(tr.tensor(np.zeros((3, 4))), target)


def test_log_softmax_bad_dim():
    with pytest.raises(ValueError, match="log_softmax: dim 2 is out of range"):
        F.log_softmax(tr.tensor(np.zeros((3, 4))), 2)
