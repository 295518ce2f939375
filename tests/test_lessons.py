"""tinyres.lessons: the grader gives the reference solutions full marks, stubs and answers that
tinyres computed none, typical bugs partial credit with the hint that names them.  (The
pictures live in tinyres.viz and are tested in test_viz.py.)"""
import numpy as np
import pytest

import tinyres as tr
import tinyres.functional as F
from tinyres.backend.numpy_kernels import col2im
import submissions
from tinyres.lessons import EXERCISES, exercises, grade


# --------------------------------------------------------------------------- the grader
SOLUTIONS = submissions.course().solutions


@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_reference_solution_passes_with_full_marks(name, capsys):
    result = grade(name, SOLUTIONS[name])
    assert result.passed, str(result)
    assert result.score == result.max_score == EXERCISES[name].points
    assert result.max_rel_error < 1e-12
    assert all(case.finite_differences_passed for case in result.cases)
    assert len(result.cases) == len(EXERCISES[name].cases)
    assert capsys.readouterr().out.startswith(f"PASS  {name}")


def test_the_points_add_up_to_nine():
    assert {name: exercise.points for name, exercise in EXERCISES.items()} == {
        "relu": 1, "max_pool2d": 2, "conv2d": 3, "batch_norm": 3}


@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_reference_passes_the_hidden_cases_too(name):
    hidden = submissions.course().hidden_cases[name]
    result = grade(name, SOLUTIONS[name], hidden_cases=hidden, verbose=False)
    assert result.passed and len(result.cases) == len(EXERCISES[name].cases) + len(hidden)
    assert sum(case.case.hidden for case in result.cases) == len(hidden)


def _stub(grad_output, cache):
    raise NotImplementedError


def _zeros(name):
    def backward(grad_output, cache):
        if len(EXERCISES[name].gradients) == 1:
            return np.zeros_like(cache["x"])
        channels = np.zeros(cache["weight"].shape[0])        # dbias: one value per channel
        return np.zeros_like(cache["x"]), np.zeros_like(cache["weight"]), channels
    return backward


@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_stub_scores_zero_and_says_not_implemented(name, capsys):
    result = grade(name, _stub)
    assert not result.passed and result.score == 0
    assert all("not implemented" in case.message for case in result.cases)
    out = capsys.readouterr().out
    assert out.startswith(f"FAIL  {name}") and out.count("not implemented") == 1


@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_zeros_fail_with_relative_error_one(name):
    result = grade(name, _zeros(name), verbose=False)
    assert not result.passed and result.score == 0
    assert result.max_rel_error == pytest.approx(1.0)
    assert not any(case.finite_differences_passed for case in result.cases)


def test_assert_passed_raises_with_the_whole_report():
    result = grade("max_pool2d", submissions.as_function("max_pool2d",
                                                         submissions.MAX_POOL_REPEATED_INDEX),
                   verbose=False)
    with pytest.raises(AssertionError) as raised:
        result.assert_passed()
    assert str(result) in str(raised.value)
    assert result.assert_passed(partial_credit=True) == pytest.approx(2 / 3)   # 1 of 3 cases
    with pytest.raises(AssertionError, match="not implemented"):
        grade("relu", _stub, verbose=False).assert_passed(partial_credit=True)


def test_assert_passed_prints_the_report_and_returns_the_score(capsys):
    assert grade("relu", SOLUTIONS["relu"], verbose=False).assert_passed() == 1
    assert capsys.readouterr().out.startswith("PASS  relu        1.00 / 1 points")


def test_wrong_number_of_gradients_is_explained():
    result = grade("conv2d", lambda grad, cache: np.zeros_like(cache["x"]), verbose=False)
    assert not result.passed
    assert "must return 3 gradient(s) (dx, dweight, dbias)" in result.cases[0].message


def test_wrong_shape_is_explained():
    message = grade("relu", lambda grad, cache: grad.ravel(), verbose=False).cases[0].message
    assert "has shape" in message and "expected" in message


def test_none_is_explained():
    result = grade("relu", lambda grad, cache: None, verbose=False)
    assert "returned None for dx" in result.cases[0].message


def test_crash_in_student_code_is_reported_not_raised():
    result = grade("relu", lambda grad, cache: grad[10 ** 6], verbose=False)
    assert not result.passed and "IndexError" in result.cases[0].message


def test_unknown_cache_key_lists_the_keys_it_has():
    message = grade("relu", lambda grad, cache: cache["input"], verbose=False).cases[0].message
    assert "the cache has no key 'input'; it holds ['out', 'x']" in message


def test_writing_into_the_cache_does_not_spoil_the_check():
    def vandal(grad_output, cache):
        answer = SOLUTIONS["relu"](grad_output, cache)
        cache["x"][...] = 0
        return answer
    assert grade("relu", vandal, verbose=False).passed


def test_warnings_inside_an_answer_stay_out_of_stderr(capsys):
    def noisy(grad_output, cache):
        import warnings
        warnings.warn("a student's warning")
        np.log(-np.ones(1))                                   # NumPy's RuntimeWarning
        return SOLUTIONS["relu"](grad_output, cache)
    assert grade("relu", noisy, verbose=False).passed
    assert capsys.readouterr().err == ""


def test_float32_answer_is_accepted():
    result = grade("relu", lambda grad, cache: SOLUTIONS["relu"](grad, cache).astype(np.float32),
                   tolerance=1e-6, verbose=False)
    assert result.passed


def test_unknown_exercise_and_non_callable_are_rejected():
    with pytest.raises(ValueError, match="unknown exercise"):
        grade("softmax", _stub)
    with pytest.raises(TypeError, match="backward"):
        grade("relu", "not a function")


def test_result_prints_every_case():
    text = str(grade("max_pool2d", SOLUTIONS["max_pool2d"], verbose=False))
    assert text.count("\n  ok    ") == 3 and text.startswith("PASS")


# --------------------------------------------------------------------------- answers tinyres made
@pytest.mark.parametrize("name, body", [
    ("relu", submissions.RELU_BY_TINYRES),
    ("batch_norm", submissions.BATCH_NORM_BY_KERNEL),
    ("conv2d", "import tinyres as tr, tinyres.functional as F\n"
               "x, w, b = (tr.tensor(cache[k], requires_grad=True) for k in ('x', 'weight', 'bias'))\n"
               "F.conv2d(x, w, b, cache['stride'], cache['padding'], cache['dilation'])"
               ".backward(grad_output)\n"
               "return x.grad.numpy(), w.grad.numpy(), b.grad.numpy()"),
    ("max_pool2d", "from tinyres.backend import numba_kernels\n"
                   "return numba_kernels.max_pool2d_backward(grad_output, cache['argmax'], "
                   "cache['x'].shape, cache['kernel_size'], cache['stride'], cache['padding'])"),
    ("relu", "import tinyres as tr\nreturn (tr.tensor(grad_output) * 1.0).numpy()"),
])
def test_an_answer_computed_by_tinyres_scores_zero_not_allowed(name, body):
    result = grade(name, submissions.as_function(name, body), verbose=False)
    assert result.score == 0
    assert all("not allowed inside an answer" in case.message for case in result.cases)
    assert str(result).count("not allowed") == 1


def test_outside_an_answer_tinyres_works_again():
    grade("relu", submissions.as_function("relu", submissions.RELU_BY_TINYRES), verbose=False)
    x = tr.tensor(np.array([1.0, -1.0]), requires_grad=True)
    F.relu(x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 0.0])


def test_im2col_col2im_and_forward_kernels_stay_allowed():
    body = ("from tinyres.backend import numpy_kernels\n"
            "numpy_kernels.relu_forward(cache['x'])\n"
            "cols = numpy_kernels.im2col(np.ones((1, 1, 3, 3)), (2, 2), (1, 1), (0, 0), (1, 1))\n"
            "numpy_kernels.col2im(cols, (1, 1, 3, 3), (2, 2), (1, 1), (0, 0), (1, 1))\n"
            + SOLUTIONS_SOURCE["relu"])
    assert grade("relu", submissions.as_function("relu", body), verbose=False).passed


# --------------------------------------------------------------------------- the report teaches
SOLUTIONS_SOURCE = submissions.reference_bodies()


def test_report_of_a_wrong_case_names_the_worst_element_and_both_values():
    result = grade("relu", lambda grad, cache: 3 * SOLUTIONS["relu"](grad, cache), verbose=False)
    check = result.cases[0].gradients[0]
    assert check.rel_error == pytest.approx(2.0)              # says more than "1.0"
    assert check.returned == pytest.approx(3 * check.expected)
    text = str(result)
    assert f"the worst at {check.worst_index}: returned {check.returned:.6g}" in text
    assert "abs error" in text and "relative error 2.0e+00" in text and "% of elements wrong" in text
    assert "times 3 everywhere" in text                       # the constant-factor hint


def test_hint_sits_right_under_its_failing_case():
    result = grade("max_pool2d", submissions.as_function("max_pool2d",
                                                         submissions.MAX_POOL_REPEATED_INDEX),
                   verbose=False)
    lines = str(result).splitlines()
    for index, line in enumerate(lines):
        if "WRONG" in line:
            block = lines[index + 1:index + 3]
            assert block[0].strip().startswith("dx:") and "np.add.at" in block[1]


# Typical bugs: which cases fail, and the hint each failing case prints.
def _pool_padding_not_removed(grad_output, cache):
    x, argmax = cache["x"], cache["argmax"]
    (_, kernel_w), (sh, sw), (ph, pw) = cache["kernel_size"], cache["stride"], cache["padding"]
    n, c, ho, wo = np.indices(grad_output.shape)
    padded = np.zeros((x.shape[0], x.shape[1], x.shape[2] + 2 * ph, x.shape[3] + 2 * pw))
    np.add.at(padded, (n, c, ho * sh + argmax // kernel_w, wo * sw + argmax % kernel_w), grad_output)
    return padded[:, :, :x.shape[2], :x.shape[3]]


def _conv_without_transpose(grad_output, cache):
    x, weight, cols = cache["x"], cache["weight"], cache["cols"]
    grad_matrix = grad_output.reshape(weight.shape[0], -1)          # the bug: no transpose
    grad_x = col2im(weight.reshape(weight.shape[0], -1).T @ grad_matrix, x.shape, weight.shape[2:],
                    cache["stride"], cache["padding"], cache["dilation"])
    return grad_x, (grad_matrix @ cols.T).reshape(weight.shape), grad_output.sum(axis=(0, 2, 3))


def _conv_dx_off(grad_output, cache):
    grad_x, grad_weight, grad_bias = SOLUTIONS["conv2d"](grad_output, cache)
    return grad_x + 0.5 * cache["x"], grad_weight, grad_bias


def _batch_norm(axes, variance_path=True):
    def backward(grad_output, cache):
        x_hat, inv_std, weight = cache["x_hat"], cache["inv_std"], cache["weight"]
        count = x_hat.size // x_hat.shape[1]
        grad_x_hat = grad_output * weight.reshape(1, -1, 1, 1)
        bracket = count * grad_x_hat - grad_x_hat.sum(axis=axes, keepdims=True)
        if variance_path:
            bracket = bracket - x_hat * (grad_x_hat * x_hat).sum(axis=axes, keepdims=True)
        return (inv_std.reshape(1, -1, 1, 1) / count * bracket,
                (grad_output * x_hat).sum(axis=(0, 2, 3)), grad_output.sum(axis=(0, 2, 3)))
    return backward


def _relu_passes_everything(grad_output, cache):
    return grad_output


@pytest.mark.parametrize("name, backward, cases_passing, hint", [
    ("max_pool2d", submissions.as_function("max_pool2d", submissions.MAX_POOL_REPEATED_INDEX),
     [True, False, False], "np.add.at"),
    ("max_pool2d", _pool_padding_not_removed, [True, False, True], "shifted by the padding"),
    ("conv2d", _conv_without_transpose, [False, False, True, False], "transpose to"),
    ("conv2d", _conv_dx_off, [False, False, False, False], "dweight and dbias are right, dx"),
    ("batch_norm", _batch_norm(axes=(0,)), [False, True, False], "path through the batch mean"),
    ("batch_norm", _batch_norm(axes=(0, 2, 3), variance_path=False), [False, False, False],
     "path through the batch variance"),
    ("relu", _relu_passes_everything, [False, False], "blocked there"),
])
def test_typical_bugs_fail_their_cases_with_their_hint(name, backward, cases_passing, hint):
    result = grade(name, backward, verbose=False)
    assert [case.passed for case in result.cases] == cases_passing
    points = EXERCISES[name].points
    assert result.score == pytest.approx(points * sum(cases_passing) / len(cases_passing))
    assert all(hint in case.hint for case in result.cases if not case.passed), \
        [case.hint for case in result.cases]


def test_conv_bug_keeps_dbias_right():
    result = grade("conv2d", _conv_without_transpose, verbose=False)
    assert all(case.rel_errors["dbias"] < 1e-12 for case in result.cases)
    assert all(case.rel_errors["dweight"] > 0.1 for case in result.cases if not case.passed)


def test_batch_norm_bug_keeps_dweight_and_dbias_right():
    result = grade("batch_norm", _batch_norm(axes=(0, 2, 3), variance_path=False), verbose=False)
    for case in result.cases:
        assert case.rel_errors["dweight"] < 1e-12 and case.rel_errors["dbias"] < 1e-12
        assert case.rel_errors["dx"] > 1e-3             # far above the 1e-7 tolerance


# --------------------------------------------------------------------------- exercises
def test_exercise_forwards_match_tinyres_ops():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 6, 6))
    w, b = rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    out, cache = exercises.conv2d_forward(x, w, b, stride=2, padding=1)
    expected = F.conv2d(tr.tensor(x), tr.tensor(w), tr.tensor(b), stride=2, padding=1).numpy()
    np.testing.assert_allclose(out, expected, rtol=1e-12)
    assert cache["stride"] == (2, 2) and cache["cols"].shape == (27, 2 * 3 * 3)
    out, cache = exercises.max_pool2d_forward(x, 3, 2, 1)
    np.testing.assert_array_equal(out, F.max_pool2d(tr.tensor(x), 3, 2, 1).numpy())
    gamma, beta = rng.standard_normal(3), rng.standard_normal(3)
    out, cache = exercises.batch_norm_forward(x, gamma, beta)
    expected = F.batch_norm(tr.tensor(x), None, None, tr.tensor(gamma), tr.tensor(beta), training=True)
    np.testing.assert_allclose(out, expected.numpy(), rtol=1e-12)
    np.testing.assert_allclose(cache["x_hat"] * gamma.reshape(1, 3, 1, 1) + beta.reshape(1, 3, 1, 1), out)
