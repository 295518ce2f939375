"""tinyres.lessons: the grader passes the reference solutions and fails wrong answers the way
the assignment's hints say; every picture returns a figure and writes a PNG."""
import numpy as np
import pytest
from matplotlib.figure import Figure

import tinyres as tr
import tinyres.functional as F
from tinyres.backend.numpy_kernels import col2im
from tinyres.lessons import EXERCISES, exercises, grade, pictures, solutions

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# --------------------------------------------------------------------------- the grader
@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_reference_solution_passes(name, capsys):
    result = grade(name, solutions.SOLUTIONS[name])
    assert result.passed, str(result)
    assert result.max_rel_error < 1e-12
    assert all(case.finite_differences_passed for case in result.cases)
    assert len(result.cases) == len(EXERCISES[name].cases)
    assert capsys.readouterr().out.startswith(f"PASS  {name}")


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
def test_stub_fails_and_says_not_implemented(name, capsys):
    result = grade(name, _stub)
    assert not result.passed and not result.cases
    assert "not implemented" in result.message
    assert capsys.readouterr().out.startswith(f"FAIL  {name}")


@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_zeros_fail_with_relative_error_one(name):
    result = grade(name, _zeros(name), verbose=False)
    assert not result.passed
    assert result.max_rel_error == pytest.approx(1.0)
    assert not any(case.finite_differences_passed for case in result.cases)


def test_wrong_number_of_gradients_is_explained():
    result = grade("conv2d", lambda grad, cache: np.zeros_like(cache["x"]), verbose=False)
    assert not result.passed
    assert "must return 3 gradient(s) (dx, dweight, dbias)" in result.message


def test_wrong_shape_is_explained():
    result = grade("relu", lambda grad, cache: grad.ravel(), verbose=False)
    assert not result.passed and "has shape" in result.message and "expected" in result.message


def test_none_is_explained():
    result = grade("relu", lambda grad, cache: None, verbose=False)
    assert not result.passed and "returned None for dx" in result.message


def test_crash_in_student_code_is_reported_not_raised():
    result = grade("relu", lambda grad, cache: grad[10 ** 6], verbose=False)
    assert not result.passed and "IndexError" in result.message


def test_writing_into_the_cache_does_not_spoil_the_check():
    def vandal(grad_output, cache):
        answer = solutions.relu_backward(grad_output, cache)
        cache["x"][...] = 0
        return answer
    assert grade("relu", vandal, verbose=False).passed


def test_float32_answer_is_accepted():
    result = grade("relu", lambda grad, cache: solutions.relu_backward(grad, cache).astype(np.float32),
                   tolerance=1e-6, verbose=False)
    assert result.passed


def test_unknown_exercise_and_non_callable_are_rejected():
    with pytest.raises(ValueError, match="unknown exercise"):
        grade("softmax", _stub)
    with pytest.raises(TypeError, match="backward"):
        grade("relu", "not a function")


def test_result_prints_every_case():
    text = str(grade("max_pool2d", solutions.max_pool2d_backward, verbose=False))
    assert text.count("finite differences agree") == 3 and text.startswith("PASS")


# The hints at the end of the assignment notebook describe how typical bugs show up:
# which cases fail.  Each buggy answer below must fail exactly those cases.
def _pool_assign_instead_of_add_at(grad_output, cache):
    x, argmax = cache["x"], cache["argmax"]
    (_, kernel_w), (sh, sw), (ph, pw) = cache["kernel_size"], cache["stride"], cache["padding"]
    n, c, ho, wo = np.indices(grad_output.shape)
    padded = np.zeros((x.shape[0], x.shape[1], x.shape[2] + 2 * ph, x.shape[3] + 2 * pw))
    padded[n, c, ho * sh + argmax // kernel_w, wo * sw + argmax % kernel_w] += grad_output
    return padded[:, :, ph:ph + x.shape[2], pw:pw + x.shape[3]]


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


@pytest.mark.parametrize("name, backward, cases_passing", [
    ("max_pool2d", _pool_assign_instead_of_add_at, [True, False, False]),
    ("max_pool2d", _pool_padding_not_removed, [True, False, True]),
    ("conv2d", _conv_without_transpose, [False, False, True, False]),   # case 3 has N = 1
    ("batch_norm", _batch_norm(axes=(0,)), [False, True, False]),       # case 2 is (8, 2, 1, 1)
    ("batch_norm", _batch_norm(axes=(0, 2, 3), variance_path=False), [False, False, False]),
])
def test_typical_bugs_fail_the_cases_the_hints_name(name, backward, cases_passing):
    result = grade(name, backward, verbose=False)
    assert not result.passed
    assert [case.passed for case in result.cases] == cases_passing


def test_conv_bug_keeps_dbias_right():
    result = grade("conv2d", _conv_without_transpose, verbose=False)
    assert all(case.rel_errors["dbias"] < 1e-12 for case in result.cases)
    assert all(case.rel_errors["dweight"] > 0.1 for case in result.cases if not case.passed)


def test_batch_norm_bug_keeps_dweight_and_dbias_right():
    result = grade("batch_norm", _batch_norm(axes=(0, 2, 3), variance_path=False), verbose=False)
    for case in result.cases:
        assert case.rel_errors["dweight"] < 1e-12 and case.rel_errors["dbias"] < 1e-12
        assert case.rel_errors["dx"] > 0.1


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


# --------------------------------------------------------------------------- pictures
def _assert_png(path):
    assert path.exists() and path.read_bytes()[:8] == PNG_SIGNATURE and path.stat().st_size > 2000


def _small_graph():
    a = tr.tensor(2.0, requires_grad=True)
    b = tr.tensor(-3.0, requires_grad=True)
    c = tr.tensor(np.ones(3))                      # a constant: no gradient
    loss = ((a * b + c) * a).sum()
    return loss, dict(a=a, b=b, c=c, loss=loss)


def test_graph_nodes_lists_inputs_before_outputs():
    loss, names = _small_graph()
    tensors, ops = pictures.graph_nodes(loss)
    assert tensors[-1] is loss
    assert sorted(name for name, _ in ops.values()) == ["Add", "Mul", "Mul", "Sum"]
    assert any(t is names["c"] for t in tensors)   # the constant is drawn too
    position = {id(t): i for i, t in enumerate(tensors)}
    for output_id, (_, inputs) in ops.items():
        assert all(position[id(t)] < position[output_id] for t in inputs)


def test_draw_graph_returns_figure_and_writes_png(tmp_path):
    loss, names = _small_graph()
    figure = pictures.draw_graph(loss, names=names, title="graph", path=tmp_path / "graph.png")
    assert isinstance(figure, Figure)
    _assert_png(tmp_path / "graph.png")
    texts = [text.get_text() for text in figure.axes[0].texts]
    assert sum(text == "Mul" for text in texts) == 2
    assert any(text.startswith("a\n= 2") for text in texts)


def test_graph_layout_puts_every_op_between_its_inputs_and_output():
    loss, _ = _small_graph()
    tensors, ops = pictures.graph_nodes(loss)
    layout = pictures._graph_layout(tensors, ops)
    assert len(set(layout.values())) == len(layout)          # no two nodes overlap
    for output_id, (_, inputs) in ops.items():
        op_column = layout[("op", output_id)][0]
        assert layout[("tensor", output_id)][0] == op_column + 1
        assert all(layout[("tensor", id(t))][0] < op_column for t in inputs)


def test_draw_im2col_returns_figure_and_writes_png(tmp_path):
    image = np.arange(1, 26, dtype=float).reshape(5, 5)
    figure = pictures.draw_im2col(image, 3, stride=2, padding=1, column=4, path=tmp_path / "cols.png")
    assert isinstance(figure, Figure) and len(figure.axes) == 2
    _assert_png(tmp_path / "cols.png")
    with pytest.raises(ValueError, match="column"):
        pictures.draw_im2col(image, 3, column=99)
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        pictures.draw_im2col(image[None], 3)


def test_layer_gradient_norms_and_their_plot(tmp_path):
    from tinyres import models
    model = models.cifar_resnet(8, num_classes=3, in_channels=1, width=4)
    rng = np.random.default_rng(0)
    logits = model(tr.tensor(rng.standard_normal((4, 1, 8, 8)).astype(np.float32)))
    F.cross_entropy(logits, np.array([0, 1, 2, 0])).backward()
    norms = pictures.layer_gradient_norms(model)
    assert len(norms) == 8                         # 7 convolutions and the final linear layer
    assert norms[0][0] == "conv1.weight" and norms[-1][0] == "fc.weight"
    assert all(norm > 0 for _, norm in norms)
    figure = pictures.plot_gradient_norms({"resnet-8": norms, "copy": [n for _, n in norms]},
                                          path=tmp_path / "norms.png")
    assert isinstance(figure, Figure) and len(figure.axes[0].lines) == 2
    _assert_png(tmp_path / "norms.png")


def test_plot_kernel_timings(tmp_path):
    timings = {"conv2d fwd": {"numpy": 3.0, "numba": 1.5, "torch": 0.5},
               "relu fwd+bwd": {"numpy": 0.2, "torch": 0.1}}
    figure = pictures.plot_kernel_timings(timings, path=tmp_path / "timings.png")
    assert isinstance(figure, Figure)
    assert len(figure.axes[0].patches) == 5        # one bar per measured pair
    _assert_png(tmp_path / "timings.png")


def test_confusion_matrix_counts_and_plot(tmp_path):
    labels, predictions = np.array([0, 0, 1, 2, 2, 2]), np.array([0, 1, 1, 2, 2, 0])
    counts = pictures.confusion_matrix(labels, predictions, 3)
    np.testing.assert_array_equal(counts, [[1, 1, 0], [0, 1, 0], [1, 0, 2]])
    figure = pictures.plot_confusion_matrix(labels, predictions, ["a", "b", "c"],
                                            path=tmp_path / "confusion.png")
    assert "66.7%" in figure.axes[0].get_title()
    _assert_png(tmp_path / "confusion.png")


def test_show_images(tmp_path):
    images = np.random.default_rng(0).random((5, 1, 8, 8))
    figure = pictures.show_images(images, titles=list("abcde"), columns=3, path=tmp_path / "grid.png")
    assert len(figure.axes) == 6                   # a 2 x 3 grid, the last one empty
    _assert_png(tmp_path / "grid.png")
    with pytest.raises(ValueError, match="no images"):
        pictures.show_images(np.zeros((0, 8, 8)))


def test_importing_ipykernel_does_not_make_a_notebook():
    import ipykernel  # noqa: F401  -- what a test that starts kernels imports
    assert not pictures.in_notebook()


def test_save_or_show_writes_png_outside_a_notebook(tmp_path, monkeypatch):
    figure = pictures.new_figure(3, 2)
    figure.subplots().plot([0, 1], [1, 0])
    written = pictures.save_or_show(figure, tmp_path / "sub" / "line.png")
    assert written == str(tmp_path / "sub" / "line.png")
    _assert_png(tmp_path / "sub" / "line.png")
    monkeypatch.chdir(tmp_path)
    figure.set_label("named")
    assert pictures.save_or_show(figure) == "named.png"
    _assert_png(tmp_path / "named.png")
