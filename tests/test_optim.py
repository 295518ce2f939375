"""tinyres.optim against torch.optim: same parameters, same gradients, same numbers.

Each optimizer test runs several steps in float64 with a fresh random gradient per
step, so momentum buffers and Adam's moments are exercised, and compares every
parameter after every step.  Schedule tests compare the learning rates step by step.
"""
import json
import math

import numpy as np
import pytest
import torch

import tinyres as tr
from tinyres.optim import SGD, Adam
from tinyres.optim.lr_scheduler import CosineAnnealingLR, LinearWarmup, MultiStepLR

from conftest import tolerance

SHAPES = [(3, 4), (5,), (2, 3, 3, 3)]
NUM_STEPS = 6


def make_pair(dtype=np.float64, seed=0):
    """The same random parameters as tinyres Tensors and as torch tensors."""
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(shape).astype(dtype) for shape in SHAPES]
    ours = [tr.tensor(array.copy(), requires_grad=True) for array in arrays]
    theirs = [torch.tensor(array.copy(), requires_grad=True) for array in arrays]
    return ours, theirs


def run_both(make_ours, make_theirs, dtype=np.float64, skip_grad=None):
    """Step both optimizers NUM_STEPS times with identical gradients; compare after each step.

    skip_grad: (step, index) pairs where the parameter gets no gradient that step.
    """
    ours, theirs = make_pair(dtype)
    optimizer, reference = make_ours(ours), make_theirs(theirs)
    rng = np.random.default_rng(1)
    rtol, atol = tolerance(dtype)
    for step in range(NUM_STEPS):
        optimizer.zero_grad()
        reference.zero_grad()
        for index, (mine, torch_param) in enumerate(zip(ours, theirs)):
            if skip_grad and (step, index) in skip_grad:
                continue
            grad = rng.standard_normal(mine.shape).astype(dtype)
            mine.grad = tr.tensor(grad.copy())
            torch_param.grad = torch.tensor(grad.copy())
        optimizer.step()
        reference.step()
        for mine, torch_param in zip(ours, theirs):
            assert mine.dtype == dtype
            np.testing.assert_allclose(mine.numpy(), torch_param.detach().numpy(),
                                       rtol=rtol, atol=atol, err_msg=f"after step {step}")
    return optimizer


SGD_SETTINGS = [
    dict(lr=0.1),
    dict(lr=0.1, momentum=0.9),
    dict(lr=0.05, momentum=0.9, nesterov=True),
    dict(lr=0.1, weight_decay=1e-2),
    dict(lr=0.1, momentum=0.9, weight_decay=1e-4),
    dict(lr=0.1, momentum=0.9, dampening=0.3),
    dict(lr=0.1, momentum=0.8, weight_decay=5e-4, nesterov=True),
]


@pytest.mark.parametrize("settings", SGD_SETTINGS, ids=lambda s: ",".join(f"{k}={v}" for k, v in s.items()))
def test_sgd_matches_torch(settings):
    run_both(lambda p: SGD(p, **settings), lambda p: torch.optim.SGD(p, **settings))


ADAM_SETTINGS = [
    dict(),
    dict(lr=1e-2, betas=(0.8, 0.99)),
    dict(lr=3e-3, eps=1e-6, weight_decay=1e-2),
]


@pytest.mark.parametrize("settings", ADAM_SETTINGS, ids=lambda s: ",".join(f"{k}={v}" for k, v in s.items()) or "defaults")
def test_adam_matches_torch(settings):
    run_both(lambda p: Adam(p, **settings), lambda p: torch.optim.Adam(p, **settings))


BOTH = [(SGD, torch.optim.SGD, dict(lr=0.1, momentum=0.9, weight_decay=1e-4, nesterov=True)),
        (Adam, torch.optim.Adam, dict(lr=1e-2, weight_decay=1e-4))]


@pytest.mark.parametrize("ours,theirs,settings", BOTH, ids=["SGD", "Adam"])
def test_parameters_without_gradient_are_skipped_like_torch(ours, theirs, settings):
    run_both(lambda p: ours(p, **settings), lambda p: theirs(p, **settings),
             skip_grad={(0, 1), (2, 0), (3, 2)})


@pytest.mark.parametrize("ours,theirs,settings", BOTH, ids=["SGD", "Adam"])
def test_float32_stays_float32_and_matches_torch(ours, theirs, settings):
    optimizer = run_both(lambda p: ours(p, **settings), lambda p: theirs(p, **settings),
                         dtype=np.float32)
    for values in optimizer.state.values():
        for value in values.values():
            assert getattr(value, "dtype", np.float32) == np.float32


def test_parameter_groups_use_their_own_hyperparameters():
    groups = lambda p: [{"params": p[:2]}, {"params": p[2:], "lr": 0.01, "momentum": 0.5}]
    run_both(lambda p: SGD(groups(p), lr=0.1, momentum=0.9),
             lambda p: torch.optim.SGD(groups(p), lr=0.1, momentum=0.9))


def test_state_dict_round_trip_continues_identically():
    ours, _ = make_pair()
    twin = [tr.tensor(p.numpy().copy(), requires_grad=True) for p in ours]
    first, second = SGD(ours, lr=0.1, momentum=0.9), SGD(twin, lr=0.1, momentum=0.9)
    rng = np.random.default_rng(2)
    grads = [[rng.standard_normal(p.shape) for p in ours] for _ in range(4)]
    for step, step_grads in enumerate(grads):
        for param, grad in zip(ours, step_grads):
            param.grad = tr.tensor(grad)
        first.step()
        if step == 1:  # copy the state over halfway; the twin must continue identically
            for mine, other in zip(ours, twin):
                other.data[...] = mine.data
            second.load_state_dict(first.state_dict())
        if step >= 2:
            for param, grad in zip(twin, step_grads):
                param.grad = tr.tensor(grad)
            second.step()
    for mine, other in zip(ours, twin):
        np.testing.assert_array_equal(mine.numpy(), other.numpy())


def test_zero_grad_and_bad_arguments_teach():
    param = tr.tensor(np.ones(3), requires_grad=True)
    optimizer = SGD([param], lr=0.1)
    param.grad = tr.tensor(np.ones(3))
    optimizer.zero_grad()
    assert param.grad is None
    with pytest.raises(TypeError, match="wrap it in a list"):
        SGD(param, lr=0.1)
    with pytest.raises(ValueError, match="empty parameter list"):
        SGD([], lr=0.1)
    with pytest.raises(ValueError, match="Nesterov"):
        SGD([param], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="required optimization parameter 'lr'"):
        SGD([param])
    with pytest.raises(ValueError, match="betas"):
        Adam([param], betas=(0.9, 1.5))


# ---------------------------------------------------------------------- schedules
def schedule_pair(make_ours, make_theirs, lrs=(0.1, 0.02)):
    """A tinyres and a torch optimizer with two parameter groups, each with a scheduler."""
    ours = SGD([{"params": [tr.tensor(np.zeros(1), requires_grad=True)], "lr": lr} for lr in lrs],
               lr=lrs[0], momentum=0.9)
    theirs = torch.optim.SGD([{"params": [torch.zeros(1, requires_grad=True)], "lr": lr}
                              for lr in lrs], lr=lrs[0], momentum=0.9)
    return ours, make_ours(ours), theirs, make_theirs(theirs)


def assert_same_schedule(pair, num_steps=40):
    ours, scheduler, theirs, reference = pair
    for step in range(num_steps):
        np.testing.assert_allclose(scheduler.get_last_lr(), reference.get_last_lr(),
                                   rtol=1e-12, atol=1e-15, err_msg=f"at step {step}")
        np.testing.assert_allclose([g["lr"] for g in ours.param_groups],
                                   [g["lr"] for g in theirs.param_groups], rtol=1e-12, atol=1e-15)
        ours.step()          # PyTorch warns when the scheduler steps before the optimizer
        theirs.step()
        scheduler.step()
        reference.step()


@pytest.mark.parametrize("milestones,gamma", [([5, 15, 30], 0.1), ([3, 3, 10], 0.5)])
def test_multistep_matches_torch(milestones, gamma):
    assert_same_schedule(schedule_pair(
        lambda o: MultiStepLR(o, milestones, gamma),
        lambda o: torch.optim.lr_scheduler.MultiStepLR(o, milestones, gamma)))


@pytest.mark.parametrize("T_max,eta_min", [(10, 0.0), (25, 1e-3), (7, 0.005)])
def test_cosine_matches_torch(T_max, eta_min):
    # 40 steps also cover the cosine's second half-period past T_max.
    assert_same_schedule(schedule_pair(
        lambda o: CosineAnnealingLR(o, T_max, eta_min),
        lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max, eta_min)))


def test_linear_warmup_matches_torch_linear_lr():
    assert_same_schedule(schedule_pair(
        lambda o: LinearWarmup(o, warmup_steps=8, start_factor=0.25),
        lambda o: torch.optim.lr_scheduler.LinearLR(o, start_factor=0.25, end_factor=1.0,
                                                    total_iters=8)))


def test_paper_warmup_then_multistep_matches_torch_chained():
    """He et al.'s ResNet-110: 0.01 for the first steps, then 0.1, divided at the milestones."""
    torch_schedulers = torch.optim.lr_scheduler
    assert_same_schedule(schedule_pair(
        lambda o: LinearWarmup(o, 4, start_factor=0.1, mode="constant",
                               after=MultiStepLR(o, [20, 30], 0.1)),
        lambda o: torch_schedulers.ChainedScheduler([
            torch_schedulers.ConstantLR(o, factor=0.1, total_iters=4),
            torch_schedulers.MultiStepLR(o, [20, 30], 0.1)])))


def test_linear_warmup_then_cosine_matches_hand_computed_lambda():
    warmup, total, start = 5, 30, 0.1

    def factor(t):
        ramp = start + (1 - start) * t / warmup if t < warmup else 1.0
        return ramp * (1 + math.cos(math.pi * t / total)) / 2

    assert_same_schedule(schedule_pair(
        lambda o: LinearWarmup(o, warmup, start_factor=start, after=CosineAnnealingLR(o, total)),
        lambda o: torch.optim.lr_scheduler.LambdaLR(o, factor)))


def test_warmup_refuses_a_scheduler_already_stepped():
    optimizer = SGD([tr.tensor(np.zeros(1), requires_grad=True)], lr=0.1)
    cosine = CosineAnnealingLR(optimizer, 10)
    cosine.step()
    with pytest.raises(ValueError, match="step only the warm-up"):
        LinearWarmup(optimizer, 3, after=cosine)


# ---------------------------------------------------------------------- checkpoints
SCHEDULERS = {
    "multistep": lambda o: MultiStepLR(o, [3, 7], 0.5),
    "cosine": lambda o: CosineAnnealingLR(o, 12, 1e-3),
    "warmup then multistep": lambda o: LinearWarmup(o, 4, 0.1, after=MultiStepLR(o, [6], 0.1)),
    "warmup alone": lambda o: LinearWarmup(o, 5, 0.2),
}


@pytest.mark.parametrize("name", SCHEDULERS)
def test_scheduler_state_survives_json_and_continues_identically(name):
    """A schedule saved halfway and loaded into a fresh one gives the same learning rates."""
    make = SCHEDULERS[name]
    optimizer = SGD([tr.tensor(np.zeros(1), requires_grad=True)], lr=0.1)
    scheduler = make(optimizer)
    for _ in range(5):
        scheduler.step()
    saved_optimizer = json.loads(json.dumps(optimizer.state_dict()))
    saved_scheduler = json.loads(json.dumps(scheduler.state_dict()))   # as in a checkpoint

    twin_optimizer = SGD([tr.tensor(np.zeros(1), requires_grad=True)], lr=0.1)
    twin = make(twin_optimizer)
    twin_optimizer.load_state_dict(saved_optimizer)
    twin.load_state_dict(saved_scheduler)
    for step in range(10):
        scheduler.step()
        twin.step()
        assert twin.get_last_lr() == scheduler.get_last_lr(), f"step {step}"
        assert twin_optimizer.param_groups[0]["lr"] == optimizer.param_groups[0]["lr"]


def test_scheduler_state_of_another_kind_is_refused():
    optimizer = SGD([tr.tensor(np.zeros(1), requires_grad=True)], lr=0.1)
    cosine = CosineAnnealingLR(optimizer, 10)
    with pytest.raises(ValueError, match=r"unexpected entries \['gamma', 'milestones'\]"):
        cosine.load_state_dict(MultiStepLR(optimizer, [2]).state_dict())
    warmup = LinearWarmup(optimizer, 2)
    with pytest.raises(ValueError, match="saved warm-up wraps a scheduler, this one wraps none"):
        warmup.load_state_dict(
            LinearWarmup(optimizer, 2, after=CosineAnnealingLR(optimizer, 5)).state_dict())


def test_optimizer_state_with_json_indices_loads_and_bad_states_are_explained():
    ours, _ = make_pair()
    optimizer = Adam(ours, lr=0.01)
    for param in ours:
        param.grad = tr.tensor(np.ones(param.shape))
    optimizer.step()
    state = optimizer.state_dict()
    as_json = {"state": {str(index): values for index, values in state["state"].items()},
               "param_groups": json.loads(json.dumps(state["param_groups"]))}
    twin = Adam([tr.tensor(p.numpy().copy(), requires_grad=True) for p in ours], lr=0.5)
    twin.load_state_dict(as_json)
    assert twin.param_groups[0]["lr"] == 0.01   # the saved hyperparameters win, as in torch
    first_twin_param = twin.param_groups[0]["params"][0]
    np.testing.assert_array_equal(twin.state[first_twin_param]["exp_avg"],
                                  optimizer.state[ours[0]]["exp_avg"])
    assert twin.state[first_twin_param]["exp_avg"] is not state["state"][0]["exp_avg"]

    misshaped = {"state": {0: {**state["state"][0], "exp_avg": np.zeros((9, 9))}},
                 "param_groups": state["param_groups"]}
    with pytest.raises(ValueError, match=r"'exp_avg' of parameter 0 has shape \(9, 9\), the "
                                         r"parameter has \(3, 4\)"):
        twin.load_state_dict(misshaped)
    with pytest.raises(ValueError, match="expected a dict with 'state' and 'param_groups'"):
        twin.load_state_dict({"momentum": 0.9})
    with pytest.raises(ValueError, match="parameter 7, which is in no saved parameter group"):
        twin.load_state_dict({"state": {7: {}}, "param_groups": state["param_groups"]})
