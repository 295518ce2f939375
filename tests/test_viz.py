"""Tests for tinyres/viz/: every plot returns a figure and writes a PNG through the one figure
helper; training curves put per-batch losses under the per-epoch points, on integer epoch
ticks, even for a run of one epoch; the package sits below the lessons."""
import subprocess
import sys

import numpy as np
import pytest
from matplotlib.figure import Figure

import tinyres as tr
import tinyres.functional as F
from tinyres import viz
from tinyres.viz import graph, plot_history

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# --------------------------------------------------------------------------- the package
def test_viz_does_not_import_the_lessons():
    """The lessons import viz, never the reverse: importing viz loads no lesson module."""
    script = ("import sys, tinyres.viz\n"
              "print(sorted(name for name in sys.modules if name.startswith('tinyres.lessons')))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout


def test_the_lessons_pictures_are_viz_own():
    """tinyres.lessons.pictures (still imported by lesson 6) re-exports viz's functions."""
    from tinyres.lessons import pictures

    functions = [getattr(pictures, name) for name in pictures.__all__
                 if callable(getattr(pictures, name))]
    assert len(functions) == 12 and pictures.plot_kernel_timings is viz.timings.plot_kernel_timings
    assert all(function.__module__.startswith("tinyres.viz.") for function in functions)
    assert all(getattr(viz, function.__name__) is function for function in functions)


def test_every_plot_saves_through_one_helper_at_one_dpi(tmp_path):
    figure = viz.new_figure(2, 1)
    assert viz.save(figure) is figure and list(tmp_path.iterdir()) == []
    viz.save(figure, tmp_path / "a" / "small.png")
    from matplotlib.image import imread
    assert imread(tmp_path / "a" / "small.png").shape[:2] == (1 * viz.DPI, 2 * viz.DPI)
    modules = [viz.blocks, viz.confusion, viz.curves, viz.gradients, viz.graph, viz.im2col,
               viz.images, viz.pooling, viz.timings]
    assert all(module.save is viz.figures.save for module in modules)


# --------------------------------------------------------------------------- curves
def history_of(epochs, batches=5):
    """A made-up history with ``epochs`` epochs of ``batches`` batch losses each."""
    rng = np.random.default_rng(0)
    batch_loss = [list(2.0 / (epoch + np.arange(batches) / batches) + 0.1 * rng.random(batches))
                  for epoch in range(1, epochs + 1)]
    return {"epoch": list(range(1, epochs + 1)),
            "train_loss": [float(np.mean(losses)) for losses in batch_loss],
            "test_loss": [float(np.mean(losses)) + 0.1 for losses in batch_loss],
            "train_accuracy": [0.5 + 0.1 * epoch for epoch in range(epochs)],
            "test_accuracy": [0.45 + 0.1 * epoch for epoch in range(epochs)],
            "batch_loss": batch_loss}


@pytest.mark.parametrize("epochs", [1, 2, 7])
def test_batch_losses_are_a_faint_line_under_the_epoch_points(epochs, tmp_path):
    history = history_of(epochs)
    figure = plot_history(history, path=tmp_path / "curves.png")
    loss_axes, error_axes = figure.axes[:2]
    batches, train, test = loss_axes.get_lines()
    # batch b of 5 in epoch e sits at e - 1 + (b + 1) / 5: the last batch of each epoch is at e
    expected_x = [epoch - 1 + (batch + 1) / 5 for epoch in range(1, epochs + 1)
                  for batch in range(5)]
    np.testing.assert_allclose(batches.get_xdata(), expected_x)
    np.testing.assert_array_equal(batches.get_ydata(), np.concatenate(history["batch_loss"]))
    assert batches.get_alpha() < 0.5 < (train.get_alpha() or 1.0)
    assert batches.get_label() == "train (each batch)" and train.get_marker() == "o"
    np.testing.assert_array_equal(train.get_xdata(), history["epoch"])
    for axes in (loss_axes, error_axes):
        low, high = axes.get_xlim()
        ticks = [tick for tick in axes.get_xticks() if low <= tick <= high]
        assert ticks and all(float(tick).is_integer() for tick in ticks), ticks
        assert axes.get_xlim()[0] == 0 and axes.get_xlim()[1] >= epochs
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"


def test_a_history_without_batch_losses_still_plots():
    history = history_of(3)
    del history["batch_loss"]
    loss_axes = plot_history(history).axes[0]
    assert [line.get_label() for line in loss_axes.get_lines()] == ["train", "test"]


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
    tensors, ops = viz.graph_nodes(loss)
    assert tensors[-1] is loss
    assert sorted(name for name, _ in ops.values()) == ["Add", "Mul", "Mul", "Sum"]
    assert any(t is names["c"] for t in tensors)   # the constant is drawn too
    position = {id(t): i for i, t in enumerate(tensors)}
    for output_id, (_, inputs) in ops.items():
        assert all(position[id(t)] < position[output_id] for t in inputs)


def test_draw_graph_returns_figure_and_writes_png(tmp_path):
    loss, names = _small_graph()
    figure = viz.draw_graph(loss, names=names, title="graph", path=tmp_path / "graph.png")
    assert isinstance(figure, Figure)
    _assert_png(tmp_path / "graph.png")
    texts = [text.get_text() for text in figure.axes[0].texts]
    assert sum(text == "Mul" for text in texts) == 2
    assert any(text.startswith("a\n= 2") for text in texts)


def test_graph_layout_puts_every_op_between_its_inputs_and_output():
    loss, _ = _small_graph()
    tensors, ops = viz.graph_nodes(loss)
    layout = graph._graph_layout(tensors, ops)
    assert len(set(layout.values())) == len(layout)          # no two nodes overlap
    for output_id, (_, inputs) in ops.items():
        op_column = layout[("op", output_id)][0]
        assert layout[("tensor", output_id)][0] == op_column + 1
        assert all(layout[("tensor", id(t))][0] < op_column for t in inputs)


def test_draw_im2col_returns_figure_and_writes_png(tmp_path):
    image = np.arange(1, 26, dtype=float).reshape(5, 5)
    figure = viz.draw_im2col(image, 3, stride=2, padding=1, column=4, path=tmp_path / "cols.png")
    assert isinstance(figure, Figure) and len(figure.axes) == 2
    _assert_png(tmp_path / "cols.png")
    with pytest.raises(ValueError, match="column"):
        viz.draw_im2col(image, 3, column=99)
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        viz.draw_im2col(image[None], 3)


def test_layer_gradient_norms_and_their_plot(tmp_path):
    from tinyres import models
    model = models.cifar_resnet(8, num_classes=3, in_channels=1, width=4)
    rng = np.random.default_rng(0)
    logits = model(tr.tensor(rng.standard_normal((4, 1, 8, 8)).astype(np.float32)))
    F.cross_entropy(logits, np.array([0, 1, 2, 0])).backward()
    norms = viz.layer_gradient_norms(model)
    assert len(norms) == 8                         # 7 convolutions and the final linear layer
    assert norms[0][0] == "conv1.weight" and norms[-1][0] == "fc.weight"
    assert all(norm > 0 for _, norm in norms)
    figure = viz.plot_gradient_norms({"resnet-8": norms, "copy": [n for _, n in norms]},
                                          path=tmp_path / "norms.png")
    assert isinstance(figure, Figure) and len(figure.axes[0].lines) == 2
    _assert_png(tmp_path / "norms.png")


def test_plot_kernel_timings(tmp_path):
    timings = {"conv2d fwd": {"numpy": 3.0, "numba": 1.5, "torch": 0.5},
               "relu fwd+bwd": {"numpy": 0.2, "torch": 0.1}}
    figure = viz.plot_kernel_timings(timings, path=tmp_path / "timings.png")
    assert isinstance(figure, Figure)
    assert len(figure.axes[0].patches) == 5        # one bar per measured pair
    _assert_png(tmp_path / "timings.png")


def test_confusion_matrix_counts_and_plot(tmp_path):
    labels, predictions = np.array([0, 0, 1, 2, 2, 2]), np.array([0, 1, 1, 2, 2, 0])
    counts = viz.confusion_matrix(labels, predictions, 3)
    np.testing.assert_array_equal(counts, [[1, 1, 0], [0, 1, 0], [1, 0, 2]])
    figure = viz.plot_confusion_matrix(labels, predictions, ["a", "b", "c"],
                                            path=tmp_path / "confusion.png")
    assert "66.7%" in figure.axes[0].get_title()
    _assert_png(tmp_path / "confusion.png")


def test_show_images(tmp_path):
    images = np.random.default_rng(0).random((5, 1, 8, 8))
    figure = viz.show_images(images, titles=list("abcde"), columns=3, path=tmp_path / "grid.png")
    assert len(figure.axes) == 6                   # a 2 x 3 grid, the last one empty
    _assert_png(tmp_path / "grid.png")
    with pytest.raises(ValueError, match="no images"):
        viz.show_images(np.zeros((0, 8, 8)))


def test_importing_ipykernel_does_not_make_a_notebook():
    import ipykernel  # noqa: F401  -- what a test that starts kernels imports
    assert not viz.in_notebook()


def test_save_or_show_writes_png_outside_a_notebook(tmp_path, monkeypatch):
    figure = viz.new_figure(3, 2)
    figure.subplots().plot([0, 1], [1, 0])
    written = viz.save_or_show(figure, tmp_path / "sub" / "line.png")
    assert written == str(tmp_path / "sub" / "line.png")
    _assert_png(tmp_path / "sub" / "line.png")
    monkeypatch.chdir(tmp_path)
    figure.set_label("named")
    assert viz.save_or_show(figure) == "named.png"
    _assert_png(tmp_path / "named.png")
