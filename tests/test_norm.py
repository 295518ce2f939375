"""batch_norm: gradchecks in both modes, PyTorch parity including running statistics, errors."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import tinyres as tr
import tinyres.functional as F
from conftest import assert_close, to_torch
from grids import NORM_GRID, case_id


def _parameters(channels, dtype, rng):
    weight = (1.0 + 0.5 * rng.standard_normal(channels)).astype(dtype)
    bias = rng.standard_normal(channels).astype(dtype)
    running_mean = rng.standard_normal(channels).astype(dtype)
    running_var = (0.5 + rng.random(channels)).astype(dtype)
    return weight, bias, running_mean, running_var


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("case", NORM_GRID, ids=case_id)
def test_batch_norm_gradcheck(case, training, backend, rng):
    x = tr.tensor(rng.standard_normal(case), requires_grad=True)
    weight, bias, running_mean, running_var = _parameters(case[1], np.float64, rng)
    w, b = tr.tensor(weight, requires_grad=True), tr.tensor(bias, requires_grad=True)
    tr.gradcheck(lambda x, w, b: F.batch_norm(x, running_mean.copy(), running_var.copy(), w, b,
                                              training=training), [x, w, b])


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", NORM_GRID, ids=case_id)
def test_batch_norm_matches_torch(case, dtype, training, backend, rng):
    data = (3.0 + 2.0 * rng.standard_normal(case)).astype(dtype)
    weight, bias, running_mean, running_var = _parameters(case[1], dtype, rng)
    ours = [tr.tensor(v, requires_grad=True) for v in (data, weight, bias)]
    theirs = [to_torch(v, requires_grad=True) for v in (data, weight, bias)]
    our_stats = [running_mean.copy(), running_var.copy()]
    their_stats = [torch.tensor(running_mean), torch.tensor(running_var)]

    out = F.batch_norm(ours[0], *our_stats, ours[1], ours[2], training=training, momentum=0.2, eps=1e-3)
    reference = TF.batch_norm(theirs[0], *their_stats, theirs[1], theirs[2], training=training,
                              momentum=0.2, eps=1e-3)
    assert out.dtype == dtype
    assert_close(out, reference, dtype)
    for mine, expected in zip(our_stats, their_stats):   # updated in place, unbiased variance
        assert_close(mine, expected, dtype)

    seed = rng.standard_normal(out.shape).astype(dtype)
    out.backward(seed)
    reference.backward(torch.tensor(seed))
    for mine, expected in zip(ours, theirs):
        assert_close(mine.grad, expected.grad, dtype)


def test_batch_norm_without_affine_or_running_stats(backend, rng):
    data = rng.standard_normal((4, 3, 2, 2))
    out = F.batch_norm(tr.tensor(data), None, None, training=True)
    reference = TF.batch_norm(torch.tensor(data), None, None, training=True)
    assert_close(out, reference, np.float64)
    normalized = out.numpy()
    np.testing.assert_allclose(normalized.mean(axis=(0, 2, 3)), 0, atol=1e-12)


def test_training_mode_does_not_use_running_stats_but_eval_does(backend, rng):
    data = rng.standard_normal((8, 2, 3, 3))
    running_mean, running_var = np.full(2, 100.0), np.full(2, 4.0)
    train_out = F.batch_norm(tr.tensor(data), running_mean.copy(), running_var.copy(), training=True).numpy()
    np.testing.assert_allclose(train_out.std(axis=(0, 2, 3)), 1, rtol=1e-3)
    eval_out = F.batch_norm(tr.tensor(data), running_mean, running_var, training=False).numpy()
    np.testing.assert_allclose(eval_out, (data - running_mean[0]) / np.sqrt(running_var[0] + 1e-5))


def test_no_grad_still_updates_running_stats_in_training(backend, rng):
    running_mean, running_var = np.zeros(2), np.ones(2)
    with tr.no_grad():
        F.batch_norm(tr.tensor(rng.standard_normal((4, 2, 3, 3)) + 5.0), running_mean, running_var, training=True)
    assert np.all(running_mean > 0.4)


@pytest.mark.parametrize("call, error, message", [
    (lambda x: F.batch_norm(x[0], None, None, training=True), ValueError, "input must have 4 dimensions"),
    (lambda x: F.batch_norm(x[:1, :, :1, :1], None, None, training=True), ValueError, "training mode needs more than one value per channel"),
    (lambda x: F.batch_norm(x[:, :0], None, None, training=True), ValueError, r"more than one value per channel, got input shape \(2, 0, 4, 4\)"),
    (lambda x: F.batch_norm(x, np.zeros(2), np.ones(3)), ValueError, r"running_mean must have shape \(3,\)"),
    (lambda x: F.batch_norm(x, np.zeros(3, np.float32), np.ones(3)), ValueError, "dtype float64"),
    (lambda x: F.batch_norm(x, None, None), ValueError, "evaluation mode .* needs running_mean"),
    (lambda x: F.batch_norm(x, None, None, tr.tensor(np.ones(4)), training=True), ValueError, r"weight has shape \(4,\)"),
    (lambda x: F.batch_norm(x, tr.tensor(np.zeros(3)), np.ones(3)), TypeError, "plain array"),
])
def test_batch_norm_bad_input(call, error, message):
    x = tr.tensor(np.ones((2, 3, 4, 4)))
    with pytest.raises(error, match="batch_norm: .*" + message):
        call(x)
