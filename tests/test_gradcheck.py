"""The gradient checker itself: it passes correct gradients and catches wrong ones."""
import numpy as np
import pytest

import tinyres as tr
from tinyres.autograd import Function


class BrokenSquare(Function):
    """y = x^2 with a deliberately wrong backward (3x instead of 2x)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved
        return grad * 3 * x


def test_report_for_a_correct_gradient(rng):
    x = tr.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    report = tr.gradcheck(lambda x: (x * x).sum(axis=1), [x])
    assert report.passed and report.mode == "full"
    (check,) = report.inputs
    assert check.shape == (3, 4) and check.max_abs_error < 1e-8
    assert "passed" in str(report)


@pytest.mark.parametrize("mode", ["full", "random"])
def test_wrong_backward_raises_with_the_report(mode, rng):
    x = tr.tensor(rng.standard_normal(5) + 2.0, requires_grad=True)
    with pytest.raises(tr.GradcheckError) as caught:
        tr.gradcheck(BrokenSquare.apply, [x], mode=mode)
    report = caught.value.report
    assert not report.passed
    check = report.inputs[0]
    assert check.analytic == pytest.approx(1.5 * check.numeric, rel=1e-5)
    assert "FAILED" in str(caught.value) and "mismatch" in str(caught.value)


def test_worst_element_is_located_in_full_mode():
    x = tr.tensor(np.array([0.0, 0.0, 5.0, 0.0]), requires_grad=True)
    report = tr.gradcheck(lambda x: BrokenSquare.apply(x).sum(), [x], raise_exception=False)
    assert report.inputs[0].worst_index == (2,)
    assert report.inputs[0].numeric == pytest.approx(10.0)
    assert report.inputs[0].analytic == pytest.approx(15.0)


def test_only_inputs_that_require_grad_are_checked(rng):
    a = tr.tensor(rng.standard_normal(3), requires_grad=True)
    b = tr.tensor(rng.standard_normal(3))
    report = tr.gradcheck(lambda a, b: a * b, [a, b], mode="random")
    assert [c.index for c in report.inputs] == [0]


def test_float32_inputs_warn():
    x = tr.tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    with pytest.warns(UserWarning, match="float64"):
        tr.gradcheck(lambda x: x * 2.0, [x], eps=1e-2, atol=1e-2, rtol=1e-2)


def test_errors_for_bad_arguments():
    x = tr.tensor(np.ones(3))
    with pytest.raises(ValueError, match="nothing to check"):
        tr.gradcheck(lambda x: x, [x])
    with pytest.raises(ValueError, match="mode must be"):
        tr.gradcheck(lambda x: x, [x], mode="sometimes")
    with pytest.raises(TypeError, match="input 0 must be a Tensor"):
        tr.gradcheck(lambda x: x, [np.ones(3)])


def test_rel_error():
    assert tr.rel_error(np.array([1.0, 2.0]), np.array([1.0, 2.0])) == 0.0
    assert tr.rel_error(np.array([1.0]), np.array([3.0])) == pytest.approx(0.5)
    assert tr.rel_error(tr.tensor(np.zeros(2)), np.zeros(2)) == 0.0


def test_inputs_are_restored_after_checking(rng):
    data = rng.standard_normal((2, 2))
    x = tr.tensor(data.copy(), requires_grad=True)
    tr.gradcheck(lambda x: x.exp(), [x])
    tr.gradcheck(lambda x: x.exp(), [x], mode="random")
    np.testing.assert_array_equal(x.numpy(), data)
