"""conv2d: float64 gradchecks, PyTorch parity and input errors, on the shared grid, per backend."""
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import tinyres as tr
import tinyres.functional as F
from tinyres.backend.shapes import conv_output_hw
from conftest import assert_close, to_torch
from grids import CONV_GRID, case_id


def _make(case, dtype, rng, bias=True):
    batch, channels, height, width, out_channels, kernel, stride, padding, dilation = case
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    x = rng.standard_normal((batch, channels, height, width)).astype(dtype)
    w = rng.standard_normal((out_channels, channels, kh, kw)).astype(dtype)
    b = rng.standard_normal(out_channels).astype(dtype) if bias else None
    return x, w, b, dict(stride=stride, padding=padding, dilation=dilation)


def _gradcheck(case, rng):
    x, w, b, options = _make(case, np.float64, rng)
    inputs = [tr.tensor(v, requires_grad=True) for v in (x, w, b)]
    tr.gradcheck(lambda x, w, b: F.conv2d(x, w, b, **options), inputs)


def _check_against_torch(case, dtype, rng):
    """Forward, and the gradients of all three inputs, equal PyTorch's in ``dtype``."""
    x, w, b, options = _make(case, dtype, rng)
    ours = [tr.tensor(v, requires_grad=True) for v in (x, w, b)]
    theirs = [to_torch(v, requires_grad=True) for v in (x, w, b)]
    out = F.conv2d(*ours, **options)
    with warnings.catch_warnings():   # PyTorch notes that "same" with an even kernel copies x
        warnings.filterwarnings("ignore", message="Using padding='same'")
        reference = TF.conv2d(*theirs, **options)
    assert out.dtype == dtype
    assert_close(out, reference, dtype)

    seed = rng.standard_normal(out.shape).astype(dtype)
    out.backward(seed)
    reference.backward(torch.tensor(seed))
    for mine, expected in zip(ours, theirs):
        assert mine.grad.dtype == dtype
        assert_close(mine.grad, expected.grad, dtype)


@pytest.mark.parametrize("case", CONV_GRID, ids=case_id)
def test_conv2d_gradcheck(case, backend, rng):
    _gradcheck(case, rng)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", CONV_GRID, ids=case_id)
def test_conv2d_matches_torch(case, dtype, backend, rng):
    _check_against_torch(case, dtype, rng)


def test_conv2d_without_bias_and_frozen_weight(backend, rng):
    x, w, _, options = _make(CONV_GRID[4], np.float64, rng, bias=False)
    x_tensor = tr.tensor(x, requires_grad=True)
    weight = tr.tensor(w)                      # no gradient wanted for the weight
    tr.gradcheck(lambda x: F.conv2d(x, weight, **options), [x_tensor])
    assert weight.grad is None


def test_conv2d_with_only_the_bias_learning(backend, rng):
    x, w, b, options = _make(CONV_GRID[4], np.float64, rng)
    x_tensor, weight = tr.tensor(x), tr.tensor(w)   # neither needs a gradient
    bias = tr.tensor(b, requires_grad=True)
    tr.gradcheck(lambda b: F.conv2d(x_tensor, weight, b, **options), [bias])
    assert x_tensor.grad is None and weight.grad is None


def test_conv2d_resnet_layer_matches_torch_in_float32(backend, rng):
    x = rng.standard_normal((4, 16, 32, 32)).astype(np.float32)
    w = (rng.standard_normal((32, 16, 3, 3)) * 0.1).astype(np.float32)
    out = F.conv2d(tr.tensor(x), tr.tensor(w), stride=2, padding=1)
    assert out.shape == (4, 32, 16, 16)
    assert_close(out, TF.conv2d(torch.tensor(x), torch.tensor(w), stride=2, padding=1), np.float32)


def _ones(*shape, dtype=np.float64):
    return tr.tensor(np.ones(shape, dtype=dtype))


@pytest.mark.parametrize("call, error, message", [
    (lambda: F.conv2d(_ones(3, 8, 8), _ones(4, 3, 3, 3)), ValueError, r"input must have 4 dimensions, got shape \(3, 8, 8\)"),
    (lambda: F.conv2d(_ones(1, 3, 8, 8), _ones(4, 2, 3, 3)), ValueError, r"input has 3 channels.*weight expects 2"),
    (lambda: F.conv2d(_ones(1, 3, 4, 4), _ones(4, 3, 7, 7)), ValueError, r"kernel spans 7x7.*padded input is only 4x4"),
    (lambda: F.conv2d(_ones(1, 3, 4, 4), _ones(4, 3, 3, 3), dilation=2), ValueError, r"kernel spans 5x5"),
    (lambda: F.conv2d(_ones(1, 3, 8, 8), _ones(4, 3, 3, 3), padding=-1), ValueError, r"padding must be .* >= 0"),
    (lambda: F.conv2d(_ones(1, 3, 8, 8), _ones(4, 3, 3, 3), stride=0), ValueError, r"stride must be .* >= 1"),
    (lambda: F.conv2d(tr.tensor(np.ones((1, 3, 8, 8), dtype=np.int64)), _ones(4, 3, 3, 3)), TypeError, r"input must be float32 or float64, got dtype int64"),
    (lambda: F.conv2d(_ones(1, 3, 8, 8), _ones(4, 3, 3, 3, dtype=np.float32)), TypeError, r"share one dtype"),
    (lambda: F.conv2d(_ones(1, 3, 8, 8), _ones(4, 3, 3, 3), _ones(5)), ValueError, r"bias has shape \(5,\), expected \(4,\)"),
    (lambda: F.conv2d(np.ones((1, 3, 8, 8)), _ones(4, 3, 3, 3)), TypeError, r"input must be a tinyres Tensor"),
    (lambda: F.conv2d(_ones(1, 4, 8, 8), _ones(4, 2, 3, 3), groups=2), ValueError, r"groups=2 is not supported .* all input channels"),
    (lambda: F.conv2d(_ones(1, 3, 8, 8), _ones(4, 3, 3, 3), padding="same", stride=2), ValueError, r"padding='same' needs stride 1 .*got stride=\(2, 2\)"),
    (lambda: F.conv2d(_ones(1, 3, 8, 8), _ones(4, 3, 3, 3), padding="full"), ValueError, r"padding must be 'same', 'valid', an int or a pair of ints, got 'full'"),
    (lambda: F.conv2d(_ones(1, 3, 8, 8), _ones(4, 3, 3, 3), padding=(1, "a")), TypeError, r"padding must be an int or a pair of ints, got \(1, 'a'\)"),
])
def test_conv2d_bad_input_names_the_op_and_the_shapes(call, error, message):
    with pytest.raises(error, match="conv2d: .*" + message):
        call()


# --------------------------------------------------------------------------- batch chunks
@pytest.fixture
def one_sample_chunks(monkeypatch):
    """Make the Numba backend cut every batch into chunks of one sample, on both of its paths."""
    from tinyres.backend import cpu_threads, cpu_winograd
    monkeypatch.setattr(cpu_threads, "CHUNK_BYTES", 1)
    monkeypatch.setattr(cpu_winograd, "CHUNK_BYTES", 1)


@pytest.fixture(params=["winograd", "im2col"])
def numba_conv_path(request, monkeypatch):
    """Run the test on each of the Numba backend's two convolution algorithms in turn.

    On the Winograd run the tests' layers of a few channels take Winograd too, below the
    channel count where the backend itself would switch to it.
    """
    pytest.importorskip("numba", reason="numba is not installed: the numba backend cannot run here")
    from tinyres.backend import cpu_conv
    if request.param == "winograd":
        monkeypatch.setattr(cpu_conv, "WINOGRAD_MIN_CHANNELS", 1)
        yield request.param
        return
    with cpu_conv.im2col_only():
        yield request.param


def test_conv2d_gradcheck_in_one_sample_chunks(backend, rng, one_sample_chunks):
    _gradcheck((5, 3, 6, 7, 4, 3, 2, 1, 1), rng)   # an odd batch: the threads get 3 and 2 chunks


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_conv2d_in_one_sample_chunks_matches_torch(backend, rng, dtype, one_sample_chunks):
    _check_against_torch((7, 4, 9, 9, 6, 3, 1, 1, 2), dtype, rng)


@pytest.mark.parametrize("case", [(5, 3, 6, 7, 4, 3, 1, 1, 1), (3, 2, 7, 5, 3, 3, 1, 0, 1),
                                  (2, 3, 5, 6, 2, 3, 1, 2, 1)], ids=case_id)
def test_conv2d_gradcheck_on_both_numba_paths(case, numba_conv_path, rng, one_sample_chunks):
    with tr.use_backend("numba"):
        _gradcheck(case, rng)     # 3x3 at stride 1: Winograd's shapes, odd and even sizes


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_conv2d_on_both_numba_paths_matches_torch(dtype, numba_conv_path, rng):
    with tr.use_backend("numba"):
        _check_against_torch((9, 5, 11, 10, 7, 3, 1, 1, 1), dtype, rng)


@pytest.mark.parametrize("case", [(6, 3, 8, 8, 5, 3, 1, 1, 1), (6, 3, 8, 8, 5, 1, 2, 0, 1)],
                         ids=case_id)     # a 3x3 and a strided 1x1: every Numba path
@pytest.mark.parametrize("cpu_backend", ["numpy", "numba"])
def test_conv2d_results_do_not_depend_on_the_thread_count(case, cpu_backend, rng, one_sample_chunks,
                                                          threads, numba_conv_path):
    pytest.importorskip(cpu_backend)
    x, w, b, options = _make(case, np.float32, rng)
    out_hw = conv_output_hw(8, 8, (case[5], case[5]), (case[6],) * 2, (case[7],) * 2, (1, 1))
    seed = rng.standard_normal((6, 5, *out_hw)).astype(np.float32)
    results = []
    for count in (1, 2, 3):
        threads(count)
        with tr.use_backend(cpu_backend):
            inputs = [tr.tensor(v, requires_grad=True) for v in (x, w, b)]
            out = F.conv2d(*inputs, **options)
            out.backward(seed)
        results.append([out.numpy()] + [t.grad.numpy() for t in inputs])
    for other in results[1:]:
        for first, then in zip(results[0], other):
            np.testing.assert_array_equal(first, then)   # bitwise: dW adds up in chunk order


@pytest.mark.parametrize("kernel, stride, padding, out_size", [(3, 1, 1, 5), (1, 2, 0, 3)],
                         ids=["3x3", "1x1 stride 2"])
def test_conv2d_of_an_empty_batch_has_zero_weight_gradient(kernel, stride, padding, out_size,
                                                           backend, rng):
    x = tr.tensor(np.zeros((0, 3, 5, 5)), requires_grad=True)
    w = tr.tensor(rng.standard_normal((4, 3, kernel, kernel)), requires_grad=True)
    out = F.conv2d(x, w, stride=stride, padding=padding)
    assert out.shape == (0, 4, out_size, out_size)
    out.sum().backward()
    assert x.grad.shape == (0, 3, 5, 5)
    np.testing.assert_array_equal(w.grad.numpy(), 0)


# --------------------------------------------------------------------------- 1x1 kernels
# (batch, channels, height, width, out_channels, kernel, stride, padding, dilation): strides
# that skip pixels and sizes they do not divide, as a bottleneck block's shortcut has
_POINTWISE_CASES = [(3, 4, 5, 6, 3, 1, 1, 0, 1), (2, 3, 7, 6, 5, 1, 2, 0, 1), (2, 3, 7, 8, 4, 1, 3, 0, 2)]


@pytest.mark.parametrize("case", _POINTWISE_CASES, ids=case_id)
def test_conv2d_1x1_gradcheck_on_both_numba_paths(case, numba_conv_path, rng):
    with tr.use_backend("numba"):
        _gradcheck(case, rng)


@pytest.mark.parametrize("case", _POINTWISE_CASES, ids=case_id)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_conv2d_1x1_on_both_numba_paths_matches_torch(case, dtype, numba_conv_path, rng):
    with tr.use_backend("numba"):
        _check_against_torch(case, dtype, rng)


def test_numba_runs_unpadded_1x1_convolutions_as_products_per_image(monkeypatch, rng):
    pytest.importorskip("numba", reason="numba is not installed: the numba backend cannot run here")
    from tinyres.backend import cpu_conv
    calls = []
    for name in ("_pointwise_forward", "_pointwise_backward"):
        original = getattr(cpu_conv, name)
        monkeypatch.setattr(cpu_conv, name,
                            lambda *args, _name=name, _original=original:
                            calls.append(_name) or _original(*args))

    def run(padding):
        x = tr.tensor(rng.standard_normal((2, 3, 6, 6)), requires_grad=True)
        w = tr.tensor(rng.standard_normal((4, 3, 1, 1)), requires_grad=True)
        with tr.use_backend("numba"):
            F.conv2d(x, w, stride=2, padding=padding).sum().backward()

    run(padding=0)
    assert calls == ["_pointwise_forward", "_pointwise_backward"]
    calls.clear()
    run(padding=1)                      # padding puts zeros among the pixels: im2col's job
    with cpu_conv.im2col_only():
        run(padding=0)
    assert calls == []


@pytest.mark.parametrize("in_channels, winograd", [(3, False), (7, False), (8, True), (16, True)])
def test_numba_takes_winograd_from_eight_input_channels(in_channels, winograd, monkeypatch, rng):
    pytest.importorskip("numba", reason="numba is not installed: the numba backend cannot run here")
    from tinyres.backend import cpu_conv, cpu_winograd
    calls = []
    for name in ("conv3x3_forward", "conv3x3_backward_input", "conv3x3_backward_weight"):
        original = getattr(cpu_winograd, name)
        monkeypatch.setattr(cpu_winograd, name, lambda *args, _name=name, _original=original:
                            calls.append(_name) or _original(*args))
    assert cpu_conv.uses_winograd((4, in_channels, 3, 3), (1, 1), (1, 1), (1, 1)) == winograd
    x = tr.tensor(rng.standard_normal((2, in_channels, 6, 6)), requires_grad=True)
    w = tr.tensor(rng.standard_normal((4, in_channels, 3, 3)), requires_grad=True)
    with tr.use_backend("numba"):
        out = F.conv2d(x, w, padding=1)
        out.backward(rng.standard_normal(out.shape))
    expected = {"conv3x3_forward", "conv3x3_backward_input", "conv3x3_backward_weight"}
    assert set(calls) == (expected if winograd else set())   # dx runs a forward of its own
    reference = TF.conv2d(to_torch(x.numpy()), to_torch(w.numpy()), padding=1)
    assert_close(out, reference, np.float64)


# --------------------------------------------------------------------------- column blocks
@pytest.fixture
def narrow_column_blocks(monkeypatch):
    """Make the Numba backend's im2col path split a small conv's products into blocks of 70 columns.

    The case below multiplies (3, 18) @ (18, 162) forward and (18, 3) @ (3, 162) backward:
    both get blocks of 70, 70 and 22 columns.
    """
    from tinyres.backend import cpu_conv, cpu_gemm
    monkeypatch.setattr(cpu_gemm, "SMALL_PRODUCT_SIZE", 3 * 18 * 70)
    assert cpu_gemm.column_block(3, 18, 162) == 70
    with cpu_conv.im2col_only():     # the case is a 3x3 stride-1 conv, Winograd's otherwise
        yield


_BLOCKED_CASE = (2, 2, 9, 9, 3, 3, 1, 1, 1)


def test_conv2d_gradcheck_in_column_blocks(backend, rng, narrow_column_blocks):
    _gradcheck(_BLOCKED_CASE, rng)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_conv2d_in_column_blocks_matches_torch(backend, rng, dtype, narrow_column_blocks):
    _check_against_torch(_BLOCKED_CASE, dtype, rng)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_conv2d_first_resnet20_stage_matches_torch(backend, rng, dtype):
    # 16 -> 16 channels at 32x32: Winograd on numba; numpy and cupy run im2col
    _check_against_torch((3, 16, 32, 32, 16, 3, 1, 1, 1), dtype, rng)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_conv2d_first_resnet20_stage_in_column_blocks_matches_torch(rng, dtype):
    pytest.importorskip("numba", reason="numba is not installed: the numba backend cannot run here")
    from tinyres.backend import cpu_conv
    # the default blocks (434 columns) split every chunk of the im2col path
    with tr.use_backend("numba"), cpu_conv.im2col_only():
        _check_against_torch((3, 16, 32, 32, 16, 3, 1, 1, 1), dtype, rng)


# --------------------------------------------------------------------------- nn.Conv2d
@pytest.mark.parametrize("padding, kernel_size, dilation", [("same", 4, 1), ("same", 3, 2), ("valid", 3, 1)])
def test_conv2d_layer_takes_padding_strings_as_torch(padding, kernel_size, dilation, backend, rng):
    layer = tr.nn.Conv2d(2, 3, kernel_size, padding=padding, dilation=dilation)
    reference = torch.nn.Conv2d(2, 3, kernel_size, padding=padding, dilation=dilation).double()
    with torch.no_grad():
        reference.weight.copy_(torch.tensor(layer.weight.numpy()))
        reference.bias.copy_(torch.tensor(layer.bias.numpy()))
    data = rng.standard_normal((2, 2, 7, 8)).astype(np.float32)
    out = layer(tr.tensor(data))
    assert out.shape == tuple(reference(torch.tensor(data).double()).shape)
    assert_close(out, reference(torch.tensor(data).double()).float(), np.float32)
    assert layer.padding == padding and f"padding={padding!r}" in repr(layer)


def test_conv2d_layer_refuses_same_padding_with_a_stride():
    with pytest.raises(ValueError, match=r"Conv2d: padding='same' needs stride 1"):
        tr.nn.Conv2d(2, 3, 3, stride=2, padding="same")
