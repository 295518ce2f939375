"""Winograd F(2x2, 3x3): both twins against im2col + GEMM, PyTorch and finite differences.

``winograd`` (NumPy) and ``cpu_winograd`` (Numba) must give the convolution of
``numpy_kernels.im2col`` and its two gradients on every shape the algorithm accepts:
odd and even sizes, H != W, a 1x1 output, paddings 0..2, batch 0 and 1, one channel, more
and fewer output than input channels.  The compiled twin must also give the same bits
for 1 and 2 threads.
"""
import importlib

import numpy as np
import pytest

from conftest import DTYPES, WINOGRAD_TOLERANCE
from tinyres.backend import cpu_threads, guard, numpy_kernels

# relative to the largest |value| of the expected array (see _assert_close)
KERNEL, STRIDE, DILATION = (3, 3), (1, 1), (1, 1)

# (batch, in_channels, out_channels, height, width, padding)
SHAPES = [
    (2, 3, 4, 8, 8, (1, 1)),      # the ResNet case: even size, padding 1
    (1, 2, 3, 7, 9, (1, 1)),      # batch 1, odd sizes, H != W
    (3, 1, 2, 5, 6, (0, 0)),      # one input channel, no padding
    (2, 4, 1, 6, 5, (2, 2)),      # fewer output than input channels, padding 2
    (2, 2, 5, 3, 3, (0, 0)),      # a 1x1 output, more output than input channels
    (1, 3, 2, 1, 1, (1, 1)),      # a 1x1 image, a 1x1 output
    (2, 2, 3, 4, 7, (2, 0)),      # different paddings per axis
    (11, 2, 3, 6, 6, (1, 1)),     # more images than one chunk holds
    (9, 5, 3, 8, 8, (1, 1)),      # several groups of planes per chunk, the last one partial
    (0, 2, 3, 5, 5, (1, 1)),      # an empty batch
]


def case_id(case):
    return "-".join(str(v).replace(" ", "") for v in case)


@pytest.fixture(params=["winograd", "cpu_winograd"])
def twin(request):
    """Each twin in turn; the compiled one is skipped, with the reason, without numba."""
    if request.param == "cpu_winograd":
        pytest.importorskip("numba", reason="numba is not installed: cpu_winograd cannot run")
    return importlib.import_module(f"tinyres.backend.{request.param}")


def _inputs(case, dtype, seed=0):
    """x, weight and an upstream gradient of the forward output's shape, all random."""
    batch, channels, out_channels, height, width, (ph, pw) = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, channels, height, width))
    weight = rng.standard_normal((out_channels, channels, 3, 3))
    out_hw = (height + 2 * ph - 2, width + 2 * pw - 2)
    grad_output = rng.standard_normal((batch, out_channels, *out_hw))
    return x.astype(dtype), weight.astype(dtype), grad_output.astype(dtype)


def _reference(x, weight, grad_output, padding):
    """y, dx, dweight by im2col + GEMM in float64.

    out = W @ cols,  dx = col2im(W^T @ dY),  dW = dY @ cols^T
    """
    x, weight, grad_output = (a.astype(np.float64) for a in (x, weight, grad_output))
    batch, out_channels, out_h, out_w = grad_output.shape
    cols = numpy_kernels.im2col(x, KERNEL, STRIDE, padding, DILATION)     # (C*9, N*Ho*Wo)
    w_matrix = weight.reshape(out_channels, -1)
    y = (w_matrix @ cols).reshape(out_channels, batch, out_h, out_w).transpose(1, 0, 2, 3)
    grad_matrix = grad_output.transpose(1, 0, 2, 3).reshape(out_channels, -1)
    dx = numpy_kernels.col2im(w_matrix.T @ grad_matrix, x.shape, KERNEL, STRIDE, padding, DILATION)
    dweight = (grad_matrix @ cols.T).reshape(weight.shape)
    return y, dx, dweight


def _assert_close(actual, expected, dtype):
    """Same shape and dtype; values within WINOGRAD_TOLERANCE of the expected array's largest magnitude."""
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    assert actual.dtype == dtype, (actual.dtype, dtype)
    scale = max(1.0, float(np.abs(expected).max(initial=0.0)))
    np.testing.assert_allclose(actual, expected, rtol=0, atol=WINOGRAD_TOLERANCE[dtype] * scale)


def _all_three(twin, x, weight, grad_output, padding):
    return (twin.conv3x3_forward(x, weight, padding),
            twin.conv3x3_backward_input(grad_output, weight, padding, x.shape),
            twin.conv3x3_backward_weight(grad_output, x, padding))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", SHAPES, ids=case_id)
def test_matches_im2col(twin, case, dtype):
    x, weight, grad_output = _inputs(case, dtype)
    padding = case[-1]
    for actual, expected in zip(_all_three(twin, x, weight, grad_output, padding),
                                _reference(x, weight, grad_output, padding)):
        _assert_close(actual, expected, dtype)


def test_empty_batch_gives_a_zero_weight_gradient(twin):
    x, weight, grad_output = _inputs((0, 2, 3, 5, 5, (1, 1)), np.float64)
    dweight = twin.conv3x3_backward_weight(grad_output, x, (1, 1))
    assert dweight.shape == weight.shape
    assert not dweight.any()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", [SHAPES[0], SHAPES[1], SHAPES[3], SHAPES[6]], ids=case_id)
def test_matches_pytorch(twin, case, dtype):
    torch = pytest.importorskip("torch", reason="torch is not installed: no PyTorch parity")
    x, weight, grad_output = _inputs(case, dtype, seed=1)
    padding = case[-1]
    x_t = torch.tensor(x, requires_grad=True)
    weight_t = torch.tensor(weight, requires_grad=True)
    y_t = torch.nn.functional.conv2d(x_t, weight_t, padding=padding)
    dx_t, dweight_t = torch.autograd.grad(y_t, (x_t, weight_t), torch.tensor(grad_output))
    expected = (y_t.detach().numpy(), dx_t.numpy(), dweight_t.numpy())
    for actual, wanted in zip(_all_three(twin, x, weight, grad_output, padding), expected):
        _assert_close(actual, wanted.astype(np.float64), dtype)


@pytest.mark.parametrize("case", [SHAPES[1], SHAPES[2], SHAPES[4], SHAPES[6]], ids=case_id)
def test_backward_matches_finite_differences(twin, case):
    """<grad_output, f(x + eps v) - f(x - eps v)> / (2 eps) == <dx, v>, and the same for weight."""
    x, weight, grad_output = _inputs(case, np.float64, seed=2)
    padding, eps = case[-1], 1e-6
    rng = np.random.default_rng(3)
    dx = twin.conv3x3_backward_input(grad_output, weight, padding, x.shape)
    dweight = twin.conv3x3_backward_weight(grad_output, x, padding)
    for point, gradient, change in (
            (x, dx, lambda delta: twin.conv3x3_forward(x + delta, weight, padding)),
            (weight, dweight, lambda delta: twin.conv3x3_forward(x, weight + delta, padding))):
        direction = rng.standard_normal(point.shape)
        slope = np.vdot(grad_output, change(eps * direction) - change(-eps * direction)) / (2 * eps)
        assert slope == pytest.approx(np.vdot(gradient, direction), rel=1e-7)


@pytest.mark.parametrize("dtype", DTYPES)
def test_twins_agree(dtype):
    pytest.importorskip("numba", reason="numba is not installed: cpu_winograd cannot run")
    from tinyres.backend import cpu_winograd, winograd
    for case in SHAPES:
        x, weight, grad_output = _inputs(case, dtype, seed=4)
        padding = case[-1]
        for compiled, readable in zip(_all_three(cpu_winograd, x, weight, grad_output, padding),
                                      _all_three(winograd, x, weight, grad_output, padding)):
            _assert_close(compiled, readable.astype(np.float64), dtype)


def test_compiled_results_do_not_depend_on_the_thread_count():
    pytest.importorskip("numba", reason="numba is not installed: cpu_winograd cannot run")
    from tinyres.backend import cpu_winograd
    # 40 images are several chunks, so two threads split them
    x, weight, grad_output = _inputs((40, 4, 4, 8, 8, (1, 1)), np.float32, seed=5)
    previous = cpu_threads.get_num_threads()
    try:
        results = {}
        for count in (1, 2):
            cpu_threads.set_num_threads(count)
            results[count] = _all_three(cpu_winograd, x, weight, grad_output, (1, 1))
    finally:
        cpu_threads.set_num_threads(previous)
    for one, two in zip(results[1], results[2]):
        np.testing.assert_array_equal(one, two)


def test_non_contiguous_inputs(twin):
    x, weight, grad_output = _inputs((3, 2, 3, 6, 7, (1, 1)), np.float64, seed=6)
    # the same values through transposed views
    x_view = np.ascontiguousarray(x.transpose(3, 2, 1, 0)).transpose(3, 2, 1, 0)
    weight_view = np.asfortranarray(weight)
    grad_view = np.ascontiguousarray(grad_output.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
    for actual, expected in zip(_all_three(twin, x_view, weight_view, grad_view, (1, 1)),
                                _reference(x, weight, grad_output, (1, 1))):
        _assert_close(actual, expected, np.float64)


def test_supports_only_3x3_stride_1(twin):
    for padding in [(0, 0), (1, 1), (2, 2), (0, 2)]:
        assert twin.supports((3, 3), (1, 1), padding, (1, 1))
    assert not twin.supports((3, 3), (2, 2), (1, 1), (1, 1))       # stride 2
    assert not twin.supports((3, 3), (1, 1), (1, 1), (2, 2))       # dilation 2
    assert not twin.supports((5, 5), (1, 1), (1, 1), (1, 1))       # 5x5
    assert not twin.supports((3, 3), (1, 1), (3, 3), (1, 1))       # padding 3
    assert not twin.supports((3, 3), (1, 1), (1, 3), (1, 1))


def test_errors_name_the_op_and_the_expected_shape(twin):
    x, weight, grad_output = _inputs(SHAPES[0], np.float64)
    with pytest.raises(ValueError, match=r"conv3x3_forward: weight must be \(K, 3, 3, 3\)"):
        twin.conv3x3_forward(x, weight[:, :2], (1, 1))
    with pytest.raises(ValueError, match="conv3x3_forward: padding must be .* 0..2, got"):
        twin.conv3x3_forward(x, weight, (3, 3))
    with pytest.raises(ValueError, match="conv3x3_forward: a 3x3 kernel does not fit"):
        twin.conv3x3_forward(x[:, :, :1, :1], weight, (0, 0))
    with pytest.raises(ValueError, match="conv3x3_backward_weight: grad_output must have"):
        twin.conv3x3_backward_weight(grad_output[:, :, 1:], x, (1, 1))
    with pytest.raises(ValueError, match="conv3x3_backward_input: grad_output must have"):
        twin.conv3x3_backward_input(grad_output, weight, (0, 0), x.shape)


def test_backward_kernels_refuse_inside_an_answer(twin):
    x, weight, grad_output = _inputs(SHAPES[0], np.float64)
    with guard.answer_guard():
        twin.conv3x3_forward(x, weight, (1, 1))            # forward kernels stay allowed
        with pytest.raises(guard.NotAllowedInAnswerError):
            twin.conv3x3_backward_input(grad_output, weight, (1, 1), x.shape)
        with pytest.raises(guard.NotAllowedInAnswerError):
            twin.conv3x3_backward_weight(grad_output, x, (1, 1))
