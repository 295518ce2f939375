"""The gradient checker itself: it passes correct gradients and catches wrong ones."""
import numpy as np
import pytest

import tinyres as tr
import tinyres.functional as F
from tinyres.autograd import Function, Kinks, format_index


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


# --------------------------------------------------------------------------- kinks and ties
class Abs(Function):
    """y = |x|;  dx = sign(x) * dy.  Not differentiable at 0, which it declares."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.abs(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved
        return grad * np.sign(x)

    @staticmethod
    def kinks(ctx, inputs, output):
        (x,) = inputs
        return Kinks(branch=x > 0,
                     describe=lambda i: f"abs's input {format_index(i)} = {x[i]:.3g} is near its kink at 0",
                     advice="move it away from 0")


class BrokenAbs(Abs):
    """|x| with a wrong backward: 2 sign(x) instead of sign(x)."""

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved
        return 2 * grad * np.sign(x)


def test_relu_input_within_eps_of_its_kink_is_explained():
    x = tr.tensor(np.array([[0.5, -1.0, 2.0], [1.5, 0.3, 1e-7]]), requires_grad=True)
    with pytest.raises(tr.GradcheckError) as caught:     # it still fails: nothing was proved
        tr.gradcheck(lambda x: F.relu(x), [x])
    report = caught.value.report
    (kink,) = report.at_kinks
    assert report.real_mismatches == [] and kink.where == (1, 2)
    sentence = ("x[1, 2] = 1e-07: ReLU's input [1, 2] = 1e-07 is within the ±eps step of its "
                "kink at 0: the finite difference straddles it; move the input away from 0 or "
                "use a smaller eps")
    assert str(kink) == sentence
    assert "not a bug in backward" in str(report) and sentence in str(report)


def test_a_kink_further_down_the_graph_is_found():
    # x[1] = 0.1 + 1e-9 puts ReLU's input 3x - 0.3 at 3e-9, and the step 3 * eps crosses 0
    x = tr.tensor(np.array([0.5, 0.1 + 1e-9, 0.9]), requires_grad=True)
    report = tr.gradcheck(lambda x: F.relu(x * 3.0 - 0.3).sum(), [x], raise_exception=False)
    (kink,) = report.at_kinks
    assert kink.where == (1,) and kink.label == "x[1] = 0.1"
    assert "ReLU's input [1] = 3e-09 is within the ±eps step of its kink at 0" in kink.kink


def test_a_near_tie_in_max_pooling_is_explained():
    x = tr.tensor(np.array([[[[0.5, 0.5 + 1e-7], [0.1, 0.2]]]]), requires_grad=True)
    report = tr.gradcheck(lambda x: F.max_pool2d(x, 2), [x], raise_exception=False)
    assert not report.passed and report.real_mismatches == []
    assert {m.where for m in report.at_kinks} == {(0, 0, 0, 0), (0, 0, 0, 1)}
    assert all("max_pool2d's window [0, 0, 0, 0] holds a near tie: its two largest values 0.5 "
               "and 0.5000001" in m.kink for m in report.at_kinks)


def test_a_near_tie_for_a_maximum_is_explained():
    x = tr.tensor(np.array([[0.3, 0.3 + 1e-7], [0.1, 0.9]]), requires_grad=True)
    report = tr.gradcheck(lambda x: x.max(axis=1), [x], raise_exception=False)
    assert report.real_mismatches == [] and report.at_kinks
    assert all("a tie for its group's maximum 0.3000001" in m.kink for m in report.at_kinks)


def test_a_new_op_declares_its_kinks_through_the_hook():
    x = tr.tensor(np.array([-2.0, 1e-7, 3.0]), requires_grad=True)
    report = tr.gradcheck(Abs.apply, [x], raise_exception=False)
    (kink,) = report.at_kinks
    # Abs.apply has no parameter names, so the input is called by its number
    assert str(kink).startswith("input 0, element [1] = 1e-07: abs's input [1] = 1e-07 is near "
                                "its kink at 0: the finite difference straddles it")


def test_real_mismatches_are_never_blamed_on_a_kink():
    # element 1 sits at the kink too, but a wrong backward matches neither one-sided slope
    x = tr.tensor(np.array([-2.0, 1e-7, 3.0]), requires_grad=True)
    report = tr.gradcheck(BrokenAbs.apply, [x], raise_exception=False)
    assert report.at_kinks == []
    assert [m.where for m in report.real_mismatches] == [(0,), (1,), (2,)]
    assert "matches neither one-sided slope" in report.real_mismatches[1].note
    assert "no kink explains them" in str(report)


def test_a_wrong_backward_away_from_kinks_is_a_real_mismatch(rng):
    x = tr.tensor(rng.standard_normal(4) + 3.0, requires_grad=True)
    report = tr.gradcheck(lambda x: F.relu(BrokenSquare.apply(x)), [x], raise_exception=False)
    assert report.at_kinks == [] and len(report.real_mismatches) == 4
    assert all(m.note is None for m in report.real_mismatches)


def test_random_directions_across_a_kink_are_explained():
    x = tr.tensor(np.array([1e-7, 1.0, -2.0]), requires_grad=True)
    report = tr.gradcheck(lambda x: F.relu(x), [x], mode="random", raise_exception=False)
    assert report.at_kinks and report.real_mismatches == []
    assert all(m.label.startswith("x along random direction") for m in report.at_kinks)
