"""tinyres.backend.guard: inside an answer, tinyres's ops, Tensor.backward and every backend's
``*_backward`` kernels refuse with "not allowed"; the forward kernels, im2col and col2im work."""
import importlib

import numpy as np
import pytest

import tinyres as tr
import tinyres.functional as F
from tinyres.backend import BACKEND_NAMES, why_unavailable
from tinyres.backend.guard import NotAllowedInAnswerError, answer_guard, inside_answer

BACKWARD_KERNELS = ("relu_backward", "max_pool2d_backward", "avg_pool2d_backward",
                    "batch_norm_backward")


def _kernels(name):
    reason = why_unavailable(name)
    if reason is not None:
        pytest.skip(reason)
    return importlib.import_module(f"tinyres.backend.{name}_kernels")


@pytest.mark.parametrize("backend", BACKEND_NAMES)
@pytest.mark.parametrize("kernel", BACKWARD_KERNELS)
def test_every_backward_kernel_refuses_inside_an_answer(backend, kernel):
    function = getattr(_kernels(backend), kernel)
    with answer_guard():
        with pytest.raises(NotAllowedInAnswerError,
                           match=rf"{backend}_kernels\.{kernel} is not allowed inside an answer"):
            function(None, None, None, None, None, None)


@pytest.mark.parametrize("backend", BACKEND_NAMES)
def test_forward_kernels_im2col_and_col2im_stay_allowed(backend):
    kernels = _kernels(backend)
    x = kernels.xp.asarray(np.random.default_rng(0).standard_normal((1, 2, 4, 4)))
    with answer_guard():
        out = kernels.relu_forward(x)
        pooled, argmax = kernels.max_pool2d_forward(x, (2, 2), (2, 2), (0, 0))
        cols = kernels.im2col(x, (3, 3), (1, 1), (1, 1), (1, 1))
        back = kernels.col2im(cols, x.shape, (3, 3), (1, 1), (1, 1), (1, 1))
    assert out.shape == x.shape and pooled.shape == (1, 2, 2, 2) and back.shape == x.shape


def test_ops_and_backward_refuse_and_work_again_afterwards():
    x = tr.tensor(np.array([1.0, -2.0]), requires_grad=True)
    y = F.relu(x).sum()
    with answer_guard():
        assert inside_answer()
        with pytest.raises(NotAllowedInAnswerError, match="ReLU op is not allowed"):
            F.relu(x)
        with pytest.raises(NotAllowedInAnswerError, match="Tensor.backward is not allowed"):
            y.backward()
        with pytest.raises(NotAllowedInAnswerError, match="not allowed"):
            x * 2.0
    assert not inside_answer()
    y.backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 0.0])


def test_guards_nest():
    with answer_guard():
        with answer_guard():
            assert inside_answer()
        assert inside_answer()
    assert not inside_answer()


def test_an_answer_that_switches_the_guard_off_is_caught():
    from tinyres.backend import guard

    with pytest.raises(NotAllowedInAnswerError, match="changing tinyres's answer guard"):
        with answer_guard():
            guard._answers_running = 0
    assert not inside_answer()
    F.relu(tr.tensor(np.ones(2)))          # and tinyres works again
