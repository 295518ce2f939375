"""Tensors on the GPU: moving them, mixing devices, ops and a short training run there.

The tests marked ``needs_gpu`` skip, with the reason, on a machine without cupy or without
a CUDA device.  On such a machine the ``needs_no_gpu`` tests run instead: they check
that asking for the GPU fails with an error that says why and how to fix it.
"""
import numpy as np
import pytest

import tinyres as tr
import tinyres.functional as F
from tinyres.backend import BackendUnavailableError, DeviceMismatchError, why_unavailable

GPU_UNAVAILABLE = why_unavailable("cupy")
needs_gpu = pytest.mark.skipif(GPU_UNAVAILABLE is not None,
                               reason=f"needs a CUDA GPU: {GPU_UNAVAILABLE}")
needs_no_gpu = pytest.mark.skipif(GPU_UNAVAILABLE is None,
                                  reason="this machine has a working GPU: the error cannot occur")


def _assert_explains(message):
    """The message names the cause (cupy missing, or no CUDA device) and, for cupy, the fix."""
    if "cupy is not installed" in message:
        assert "pip install" in message, f"says cupy is missing but not how to get it: {message}"
    else:
        assert "no CUDA device" in message, f"names neither missing cupy nor a GPU: {message}"


# --------------------------------------------------------------------------- without a GPU
@needs_no_gpu
def test_to_cuda_without_a_gpu_says_why_and_how_to_fix():
    host = tr.tensor(np.ones(3, dtype=np.float32))
    with pytest.raises(BackendUnavailableError) as info:
        host.to("cuda")
    assert "to('cuda')" in str(info.value)
    _assert_explains(str(info.value))


@needs_no_gpu
def test_tensor_on_cuda_without_a_gpu_raises():
    with pytest.raises(BackendUnavailableError) as info:
        tr.tensor(np.ones(3, dtype=np.float32), device="cuda")
    _assert_explains(str(info.value))


@needs_no_gpu
def test_set_backend_cupy_without_a_gpu_says_why_and_keeps_the_backend():
    before = tr.get_backend()
    with pytest.raises(BackendUnavailableError) as info:
        tr.set_backend("cupy")
    assert "set_backend('cupy')" in str(info.value)
    _assert_explains(str(info.value))
    assert tr.get_backend() == before
    assert "cupy" not in tr.available_backends()
    with pytest.raises(BackendUnavailableError):
        with tr.use_backend("cupy"):
            pass
    assert tr.get_backend() == before


def test_to_cpu_of_a_host_tensor_is_the_same_tensor():
    host = tr.tensor(np.ones(3))
    assert host.device == "cpu"
    assert host.to("cpu") is host


# --------------------------------------------------------------------------- with a GPU
@needs_gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_to_cuda_and_back_round_trips(dtype):
    import cupy

    host = np.random.default_rng(0).normal(size=(2, 3, 4)).astype(dtype)
    on_gpu = tr.tensor(host).to("cuda")
    assert on_gpu.device == "cuda" and isinstance(on_gpu.data, cupy.ndarray)
    assert on_gpu.dtype == dtype and on_gpu.shape == host.shape
    assert on_gpu.to("cuda") is on_gpu
    back = on_gpu.to("cpu")
    assert back.device == "cpu" and type(back.data) is np.ndarray
    np.testing.assert_array_equal(back.numpy(), host)


@needs_gpu
def test_numpy_returns_a_host_copy():
    on_gpu = tr.tensor(np.arange(6.0)).to("cuda")
    array = on_gpu.numpy()
    assert type(array) is np.ndarray
    array[0] = 100.0                     # host memory: writing it leaves the GPU tensor alone
    assert on_gpu.numpy()[0] == 0.0


@needs_gpu
def test_gradient_flows_back_across_devices():
    x = tr.tensor(np.arange(4.0), requires_grad=True)
    (x.to("cuda") * 3.0).sum().backward()
    assert x.grad.device == "cpu"
    np.testing.assert_array_equal(x.grad.numpy(), np.full(4, 3.0))


@needs_gpu
def test_mixing_cpu_and_cuda_raises():
    x = tr.tensor(np.ones((1, 2, 5, 5), dtype=np.float32))
    weight = tr.tensor(np.ones((3, 2, 3, 3), dtype=np.float32)).to("cuda")
    with pytest.raises(DeviceMismatchError, match="conv2d"):
        F.conv2d(x, weight)
    with pytest.raises(DeviceMismatchError):
        x + x.to("cuda")


def _small_network(x, weight, gamma, beta):
    """conv -> batch norm -> relu -> max pool -> avg pool -> sum: every GPU kernel, once."""
    y = F.conv2d(x, weight, padding=1, stride=1)
    y = F.batch_norm(y, None, None, gamma, beta, training=True)
    y = F.max_pool2d(F.relu(y), 2)
    return F.avg_pool2d(y, 2, padding=1).sum()


@needs_gpu
def test_ops_on_the_gpu_match_the_cpu():
    rng = np.random.default_rng(0)
    arrays = [rng.normal(size=(2, 3, 9, 8)), rng.normal(size=(4, 3, 3, 3)),
              rng.normal(size=4), rng.normal(size=4)]
    results = {}
    for device in ("cpu", "cuda"):
        with tr.use_backend("numpy"):  # host arrays use numpy; GPU arrays always use cupy
            inputs = [tr.tensor(a, requires_grad=True) for a in arrays]
            loss = _small_network(*(t.to(device) for t in inputs))
            loss.backward()
            results[device] = [loss.numpy()] + [t.grad.numpy() for t in inputs]
    for cpu, cuda in zip(results["cpu"], results["cuda"]):
        np.testing.assert_allclose(cuda, cpu, rtol=1e-10, atol=1e-12)


@needs_gpu
def test_resnet20_learns_on_the_gpu():
    from tinyres.models import resnet20
    from tinyres.optim import SGD

    rng = np.random.default_rng(0)
    classes, count, batch = 10, 64, 32
    # learnable synthetic data: each class is a fixed random image plus noise
    prototypes = rng.normal(size=(classes, 3, 16, 16)).astype(np.float32)
    labels = rng.integers(0, classes, size=count)
    images = prototypes[labels] + 0.5 * rng.normal(size=(count, 3, 16, 16)).astype(np.float32)

    with tr.use_backend("cupy"):
        model = resnet20(num_classes=classes)
        assert all(p.device == "cuda" for p in model.parameters()), \
            "a model built under use_backend('cupy') should have its parameters on the GPU"
        optimizer = SGD(model.parameters(), lr=0.05, momentum=0.9)
        inputs = tr.tensor(images)              # the cupy backend puts new tensors on the GPU
        assert inputs.device == "cuda"
        losses = []
        for step in range(200):
            start = (step * batch) % count
            loss = F.cross_entropy(model(inputs[start:start + batch]), labels[start:start + batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())

    assert np.all(np.isfinite(losses)), "the loss became NaN or infinite"
    first, last = np.mean(losses[:10]), np.mean(losses[-10:])
    assert last < 0.25 * first, f"the loss did not fall enough: {first:.3f} -> {last:.3f}"
