"""Tests for tinyres/nn: Module bookkeeping, state dicts, the layers, initialization."""
import math

import numpy as np
import pytest
import torch

import tinyres as tr
import tinyres.nn as nn
from tinyres.backend import BackendUnavailableError, why_unavailable
from conftest import tolerance


class TwoLayers(nn.Module):
    """A tiny network with a parameter, a buffer, and children of each kind."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(np.ones(3, dtype=np.float32))
        self.register_buffer("steps", np.array(0, dtype=np.int64))
        self.conv = nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(4)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))

    def forward(self, x):
        x = x * self.scale.reshape(1, 3, 1, 1)
        return self.head(nn.ReLU()(self.bn(self.conv(x))))


def random_input(rng, shape, dtype=np.float32):
    return tr.tensor(rng.standard_normal(shape).astype(dtype))


# --------------------------------------------------------------------------- Parameter
def test_parameter_is_a_leaf_tensor_that_requires_grad():
    parameter = nn.Parameter(np.zeros((2, 3), dtype=np.float32))
    assert isinstance(parameter, tr.Tensor) and parameter.requires_grad and parameter.is_leaf
    assert parameter.dtype == np.float32
    assert repr(parameter).startswith("Parameter containing:")
    with pytest.raises(TypeError, match="Parameter: needs float32 or float64"):
        nn.Parameter(np.zeros(3, dtype=np.int64))


# --------------------------------------------------------------------------- registration
def test_attribute_assignment_registers_parameters_buffers_and_children():
    model = TwoLayers()
    names = [name for name, _ in model.named_parameters()]
    assert names == ["scale", "conv.weight", "bn.weight", "bn.bias", "head.2.weight", "head.2.bias"]
    assert [name for name, _ in model.named_buffers()] == [
        "steps", "bn.running_mean", "bn.running_var", "bn.num_batches_tracked"]
    assert [name for name, _ in model.named_children()] == ["conv", "bn", "head"]
    assert [name for name, _ in model.named_modules()] == [
        "", "conv", "bn", "head", "head.0", "head.1", "head.2"]
    assert len(list(model.modules())) == 7 and len(list(model.children())) == 3
    assert [name for name, _ in model.named_parameters(recurse=False)] == ["scale"]
    assert model.conv.bias is None and "conv.bias" not in model.state_dict()


def test_reassigning_and_deleting_attributes_updates_the_registries():
    model = TwoLayers()
    model.conv = nn.Identity()
    assert "conv.weight" not in dict(model.named_parameters())
    model.steps = np.array(5, dtype=np.int64)  # replacing a buffer keeps it a buffer
    assert model.state_dict()["steps"] == 5
    del model.head
    assert "head" not in dict(model.named_children())
    with pytest.raises(AttributeError, match="no attribute 'head'"):
        model.head
    with pytest.raises(TypeError, match="is a parameter"):
        model.scale = np.ones(3, dtype=np.float32)


def test_shared_parameters_are_listed_once():
    layer = nn.Linear(3, 3)
    model = nn.Sequential(layer, nn.ReLU(), layer)
    assert len(list(model.parameters())) == 2


def test_forgetting_super_init_is_explained():
    class Broken(nn.Module):
        def __init__(self):
            self.layer = nn.Linear(2, 2)

    with pytest.raises(AttributeError, match=r"call super\(\).__init__\(\)"):
        Broken()


def test_forward_hooks_run_after_forward_and_can_be_removed(rng):
    layer, seen = nn.ReLU(), []
    handle = layer.register_forward_hook(lambda module, inputs, output: seen.append(output.shape))
    layer(random_input(rng, (2, 3)))
    handle.remove()
    layer(random_input(rng, (2, 3)))
    assert seen == [(2, 3)]


def test_parameter_gradients_never_share_memory():
    """An optimizer may edit p.grad in place (clipping, weight decay), so no two may alias."""
    class Sum(nn.Module):
        def __init__(self):
            super().__init__()
            self.first = nn.Parameter(np.ones(3))
            self.second = nn.Parameter(np.ones(3))

        def forward(self):
            return self.first + self.second

    model = Sum()
    model().sum().backward()
    model.first.grad.data *= 0.5
    np.testing.assert_array_equal(model.second.grad.numpy(), np.ones(3))


# --------------------------------------------------------------------------- modes, grads, dtype
def test_train_and_eval_reach_every_descendant():
    model = TwoLayers()
    assert model.training and model.head[2].training
    assert model.eval() is model
    assert not any(module.training for module in model.modules())
    model.train()
    assert all(module.training for module in model.modules())
    with pytest.raises(TypeError, match="mode must be True or False"):
        model.train("yes")


def test_zero_grad_forgets_gradients(rng):
    model = TwoLayers()
    model(random_input(rng, (2, 3, 5, 5))).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_double_and_float_convert_parameters_and_float_buffers_in_place():
    model = TwoLayers()
    parameters = list(model.parameters())
    assert all(p.dtype == np.float32 for p in parameters)
    model.double()
    assert [id(p) for p in model.parameters()] == [id(p) for p in parameters]
    assert all(p.dtype == np.float64 for p in model.parameters())
    assert model.bn.running_mean.dtype == np.float64
    assert model.bn.num_batches_tracked.dtype == np.int64 and model.steps.dtype == np.int64
    model.float()
    assert all(p.dtype == np.float32 for p in model.parameters())
    with pytest.raises(TypeError, match="must be floating point"):
        model.astype(np.int32)


def test_to_cpu_keeps_everything_in_place_and_cuda_explains_itself():
    model = TwoLayers()
    weight = model.conv.weight.data
    assert model.to("cpu") is model and model.conv.weight.data is weight
    with pytest.raises(ValueError, match="unknown device"):
        model.to("tpu")
    if why_unavailable("cupy") is not None:
        with pytest.raises(BackendUnavailableError, match="cuda"):
            model.to("cuda")


def test_repr_is_nested_like_pytorch():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(8),
                          nn.ReLU(), nn.MaxPool2d(3, 2, 1), nn.Sequential(nn.Flatten(), nn.Linear(8, 2)))
    assert repr(model) == (
        "Sequential(\n"
        "  (0): Conv2d(3, 8, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), bias=False)\n"
        "  (1): BatchNorm2d(8, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)\n"
        "  (2): ReLU()\n"
        "  (3): MaxPool2d(kernel_size=3, stride=2, padding=1)\n"
        "  (4): Sequential(\n"
        "    (0): Flatten(start_dim=1, end_dim=-1)\n"
        "    (1): Linear(in_features=8, out_features=2, bias=True)\n"
        "  )\n"
        ")")


# --------------------------------------------------------------------------- state dict
def test_state_dict_holds_host_copies_with_torch_names_and_dtypes():
    model = TwoLayers()
    state = model.state_dict()
    assert list(state) == ["scale", "steps", "conv.weight", "bn.weight", "bn.bias", "bn.running_mean",
                           "bn.running_var", "bn.num_batches_tracked", "head.2.weight", "head.2.bias"]
    assert all(isinstance(v, np.ndarray) for v in state.values())
    assert state["bn.num_batches_tracked"].dtype == np.int64 and state["bn.num_batches_tracked"].shape == ()
    state["conv.weight"][...] = 7.0  # a copy: the model must not change
    assert not np.any(model.conv.weight.numpy() == 7.0)


def test_state_dict_keys_match_torch(rng):
    ours = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Linear(4, 2))
    theirs = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Linear(4, 2))
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert {k: v.shape for k, v in ours.state_dict().items()} == {
        k: tuple(v.shape) for k, v in theirs.state_dict().items()}


def test_load_state_dict_round_trip_converts_to_the_models_dtype(rng):
    source, target = TwoLayers(), TwoLayers()
    state = {k: (v.astype(np.float64) if v.dtype == np.float32 else v) for k, v in source.state_dict().items()}
    state["bn.running_var"] = tr.tensor(rng.uniform(1, 2, 4))  # Tensors are accepted too
    result = target.load_state_dict(state)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert target.conv.weight.dtype == np.float32
    np.testing.assert_array_equal(target.conv.weight.numpy(), source.conv.weight.numpy())
    np.testing.assert_allclose(target.bn.running_var, state["bn.running_var"].numpy().astype(np.float32))


def test_load_state_dict_reports_every_problem_at_once_and_loads_nothing():
    model = TwoLayers()
    before = model.state_dict()
    state = model.state_dict()
    del state["conv.weight"], state["bn.bias"]
    state["fc.weight"] = np.zeros((2, 2), dtype=np.float32)
    state["head.2.weight"] = np.zeros((3, 4), dtype=np.float32)
    state["bn.weight"] = np.full(4, 9.0, dtype=np.float32)
    with pytest.raises(nn.StateDictError) as caught:
        model.load_state_dict(state)
    message = str(caught.value)
    assert "load_state_dict for TwoLayers" in message
    assert "missing keys" in message and "conv.weight" in message and "bn.bias" in message
    assert "unexpected keys" in message and "fc.weight" in message
    assert "shape mismatches: head.2.weight got (3, 4), the model has (2, 4)" in message
    assert caught.value.missing_keys == ["conv.weight", "bn.bias"]
    assert caught.value.unexpected_keys == ["fc.weight"]
    assert isinstance(caught.value, ValueError)
    np.testing.assert_array_equal(model.bn.weight.numpy(), before["bn.weight"])  # nothing loaded


def test_load_state_dict_non_strict_skips_keys_but_never_wrong_shapes():
    model = TwoLayers()
    state = model.state_dict()
    del state["conv.weight"]
    state["extra"] = np.zeros(1)
    result = model.load_state_dict(state, strict=False)
    assert result.missing_keys == ["conv.weight"] and result.unexpected_keys == ["extra"]
    state["bn.bias"] = np.zeros(5, dtype=np.float32)
    with pytest.raises(nn.StateDictError, match="shape mismatches"):
        model.load_state_dict(state, strict=False)


def test_load_state_dict_accepts_missing_num_batches_tracked_but_not_wrong_dtypes():
    model = TwoLayers()
    state = model.state_dict()
    del state["bn.num_batches_tracked"]
    model.load_state_dict(state)
    state["conv.weight"] = state["conv.weight"].astype(np.int32)
    with pytest.raises(nn.StateDictError, match="incompatible dtypes: conv.weight got int32"):
        model.load_state_dict(state)
    with pytest.raises(TypeError, match="expected a dict"):
        model.load_state_dict([1, 2])


def test_torch_state_dict_loads_unchanged():
    theirs = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    theirs[1].num_batches_tracked.fill_(3)
    ours = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    np.testing.assert_array_equal(ours[0].weight.numpy(), theirs[0].weight.detach().numpy())
    assert int(ours[1].num_batches_tracked) == 3


# --------------------------------------------------------------------------- Sequential
def test_sequential_indexing_slicing_and_errors():
    layers = [nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)]
    model = nn.Sequential(*layers)
    assert len(model) == 3 and model[0] is layers[0] and model[-1] is layers[2]
    assert list(model) == layers
    tail = model[1:]
    assert isinstance(tail, nn.Sequential) and list(tail) == layers[1:]
    assert [name for name, _ in tail.named_children()] == ["1", "2"]
    with pytest.raises(IndexError, match="out of range for 3 modules"):
        model[3]
    with pytest.raises(TypeError, match=r"the class ReLU, not a layer; call it first"):
        nn.Sequential(nn.ReLU)
    assert model.append(nn.ReLU()) is model and len(model) == 4


# --------------------------------------------------------------------------- layers vs torch
def _torch(array):
    return torch.from_numpy(np.array(array))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_layers_match_torch(backend, rng, dtype):
    """Conv2d, Linear, pools and Flatten with the same weights give torch's outputs."""
    pairs = [
        (nn.Conv2d(3, 5, 3, stride=2, padding=1, dilation=1), torch.nn.Conv2d(3, 5, 3, 2, 1)),
        (nn.Conv2d(3, 4, 3, padding=2, dilation=2, bias=False),
         torch.nn.Conv2d(3, 4, 3, padding=2, dilation=2, bias=False)),
        (nn.MaxPool2d(3, 2, 1), torch.nn.MaxPool2d(3, 2, 1)),
        (nn.AvgPool2d(2), torch.nn.AvgPool2d(2)),
        (nn.AdaptiveAvgPool2d(1), torch.nn.AdaptiveAvgPool2d(1)),
        (nn.Flatten(), torch.nn.Flatten()),
        (nn.ReLU(), torch.nn.ReLU()),
        (nn.Identity(), torch.nn.Identity()),
    ]
    x = rng.standard_normal((2, 3, 7, 7)).astype(dtype)
    rtol, atol = tolerance(dtype)
    for ours, theirs in pairs:
        ours.astype(dtype)
        theirs.to(torch.float64 if dtype == np.float64 else torch.float32)
        theirs.load_state_dict({k: _torch(v) for k, v in ours.state_dict().items()})
        expected = theirs(_torch(x)).detach().numpy()
        np.testing.assert_allclose(ours(tr.tensor(x)).numpy(), expected, rtol=rtol, atol=atol,
                                   err_msg=repr(ours))
    linear = nn.Linear(6, 4).astype(dtype)
    features = rng.standard_normal((3, 6)).astype(dtype)
    expected = features @ linear.weight.numpy().T + linear.bias.numpy()
    np.testing.assert_allclose(linear(tr.tensor(features)).numpy(), expected, rtol=rtol, atol=atol)


def test_layer_errors_name_the_layer(rng):
    with pytest.raises(ValueError, match=r"Conv2d\(3, 8.*input has 4 channels"):
        nn.Conv2d(3, 8, 3)(random_input(rng, (1, 4, 5, 5)))
    with pytest.raises(ValueError, match="Conv2d: out_channels must be a positive integer"):
        nn.Conv2d(3, 0, 3)
    with pytest.raises(ValueError, match=r"BatchNorm2d\(8.*expected input of shape \(N, 8, H, W\)"):
        nn.BatchNorm2d(8)(random_input(rng, (2, 4, 3, 3)))
    with pytest.raises(ValueError, match="Linear.*input has 5 features"):
        nn.Linear(4, 2)(random_input(rng, (2, 5)))
    with pytest.raises(ValueError, match="only output_size=1"):
        nn.AdaptiveAvgPool2d(2)
    with pytest.raises(ValueError, match="momentum must be in"):
        nn.BatchNorm2d(4, momentum=2)


def test_default_init_follows_pytorch_bounds():
    conv = nn.Conv2d(16, 32, 3)
    bound = 1 / math.sqrt(16 * 9)
    assert np.abs(conv.weight.numpy()).max() <= bound and np.abs(conv.bias.numpy()).max() <= bound
    assert np.abs(conv.weight.numpy()).max() > 0.9 * bound
    bn = nn.BatchNorm2d(5)
    assert np.all(bn.weight.numpy() == 1) and np.all(bn.bias.numpy() == 0)
    assert np.all(bn.running_mean == 0) and np.all(bn.running_var == 1)


# --------------------------------------------------------------------------- batch norm
@pytest.mark.parametrize("momentum", [0.1, None])
def test_batchnorm_train_and_eval_match_torch(backend, rng, momentum):
    """Training uses batch statistics and updates the running ones (cumulative when momentum=None);
    evaluation uses the running ones and changes nothing."""
    ours, theirs = nn.BatchNorm2d(3, momentum=momentum), torch.nn.BatchNorm2d(3, momentum=momentum)
    rtol, atol = tolerance(np.float32)
    for _ in range(3):
        x = (rng.standard_normal((4, 3, 5, 5)) * 2 + 1).astype(np.float32)
        y = ours(tr.tensor(x)).numpy()
        np.testing.assert_allclose(y, theirs(_torch(x)).detach().numpy(), rtol=rtol, atol=atol)
        np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-5)  # batch statistics
    for name in ("running_mean", "running_var"):
        np.testing.assert_allclose(getattr(ours, name), getattr(theirs, name).numpy(), rtol=1e-5)
    assert int(ours.num_batches_tracked) == int(theirs.num_batches_tracked) == 3

    ours.eval(), theirs.eval()
    frozen = ours.state_dict()
    x = rng.standard_normal((2, 3, 5, 5)).astype(np.float32)
    y = ours(tr.tensor(x)).numpy()
    np.testing.assert_allclose(y, theirs(_torch(x)).detach().numpy(), rtol=rtol, atol=atol)
    expected = (x - ours.running_mean.reshape(1, 3, 1, 1)) / np.sqrt(ours.running_var.reshape(1, 3, 1, 1) + 1e-5)
    np.testing.assert_allclose(y, expected, rtol=rtol, atol=atol)
    for key, value in ours.state_dict().items():
        np.testing.assert_array_equal(value, frozen[key], err_msg=f"eval mode changed {key}")


def test_batchnorm_eval_output_of_a_sample_does_not_depend_on_its_batch(rng):
    bn = nn.BatchNorm2d(2)
    bn(random_input(rng, (8, 2, 3, 3)))  # give it some running statistics
    x = rng.standard_normal((4, 2, 3, 3)).astype(np.float32)
    alone = bn(tr.tensor(x[:1])).numpy()
    assert not np.allclose(alone, bn(tr.tensor(x)).numpy()[:1])  # training: depends on the batch
    bn.eval()
    np.testing.assert_allclose(bn(tr.tensor(x[:1])).numpy(), bn(tr.tensor(x)).numpy()[:1], rtol=1e-6)


# --------------------------------------------------------------------------- init
def test_kaiming_normal_has_he_standard_deviation():
    weight = nn.Parameter(np.empty((256, 128, 3, 3), dtype=np.float32))
    nn.init.kaiming_normal_(weight, mode="fan_out", nonlinearity="relu")
    assert weight.numpy().std() == pytest.approx(math.sqrt(2 / (256 * 9)), rel=0.01)
    nn.init.kaiming_normal_(weight, mode="fan_in", nonlinearity="relu")
    assert weight.numpy().std() == pytest.approx(math.sqrt(2 / (128 * 9)), rel=0.01)
    assert nn.init.fan_in_and_fan_out((64, 3, 7, 7)) == (147, 3136)
    with pytest.raises(ValueError, match="mode must be 'fan_in' or 'fan_out'"):
        nn.init.kaiming_normal_(weight, mode="fan_avg")
    with pytest.raises(ValueError, match="unknown nonlinearity"):
        nn.init.calculate_gain("swish")


def test_manual_seed_makes_initialization_reproducible():
    nn.init.manual_seed(123)
    first = nn.Conv2d(3, 4, 3).weight.numpy()
    second = nn.Conv2d(3, 4, 3).weight.numpy()
    nn.init.manual_seed(123)
    np.testing.assert_array_equal(nn.Conv2d(3, 4, 3).weight.numpy(), first)
    assert not np.array_equal(first, second)
    generator = np.random.default_rng(5)
    weight = nn.init.normal_(nn.Parameter(np.empty(4, dtype=np.float64)), generator=generator)
    np.testing.assert_array_equal(weight.numpy(), np.random.default_rng(5).standard_normal(4))
