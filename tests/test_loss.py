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


@pytest.mark.parametrize("shape, dim", [((5, 0, 0), -1), ((3, 0), 1), ((0, 4), 1), ((), 0), ((), -1)],
                         ids=str)
def test_log_softmax_of_empty_and_0d_inputs_matches_torch(shape, dim, rng):
    # an empty input gives an empty result and a 0-d one gives 0, both as PyTorch
    data = rng.standard_normal(shape)
    x, reference_x = tr.tensor(data, requires_grad=True), to_torch(data, requires_grad=True)
    out, reference = F.log_softmax(x, dim), TF.log_softmax(reference_x, dim)
    assert out.shape == tuple(reference.shape)
    assert_close(out, reference, np.float64)
    seed = rng.standard_normal(out.shape)
    out.backward(seed)
    reference.backward(torch.tensor(seed))
    assert_close(x.grad, reference_x.grad, np.float64)
    tr.gradcheck(lambda x: F.log_softmax(x, dim), [tr.tensor(data, requires_grad=True)])


def test_log_softmax_dtype_may_only_name_the_inputs_own():
    x = tr.tensor(np.zeros((2, 3), dtype=np.float32))
    assert F.log_softmax(x, 1, dtype=np.float32).dtype == np.float32
    with pytest.raises(TypeError, match="log_softmax: dtype=float64 would convert the float32 input"):
        F.log_softmax(x, 1, dtype=np.float64)


def test_cross_entropy_of_an_empty_batch_is_nan_as_torch():
    x = tr.tensor(np.zeros((0, 3)), requires_grad=True)
    reference_x = to_torch(np.zeros((0, 3)), requires_grad=True)
    loss = F.cross_entropy(x, np.zeros(0, dtype=np.int64))
    reference = TF.cross_entropy(reference_x, torch.zeros(0, dtype=torch.int64))
    assert np.isnan(loss.item()) and np.isnan(reference.item())
    loss.backward()
    reference.backward()
    assert x.grad.shape == tuple(reference_x.grad.shape) == (0, 3)


@pytest.mark.parametrize("options, message", [
    (dict(weight=tr.tensor(np.ones(4))), r"weight=a Tensor is not supported .*every class weighs the same"),
    (dict(reduction="sum"), r"reduction='sum' is not supported .* mean over the batch"),
    (dict(label_smoothing=0.1), r"label_smoothing=0.1 is not supported"),
    (dict(ignore_index=1), r"ignore_index=1 is not supported .*every target counts"),
    (dict(size_average=False), r"size_average=False is not supported"),
])
def test_cross_entropy_refuses_the_options_it_lacks_by_name(options, message):
    with pytest.raises(ValueError, match="^cross_entropy: " + message):
        F.cross_entropy(tr.tensor(np.zeros((3, 4))), np.array([0, 1, 2]), **options)


def test_cross_entropy_refuses_class_probabilities_as_targets():
    with pytest.raises(TypeError, match="cross_entropy: target must hold integer class ids, got "
                                        r"dtype float64 \(class probabilities .* not supported\)"):
        F.cross_entropy(tr.tensor(np.zeros((3, 4))), np.full((3, 4), 0.25))
