"""Tests for tinyres/viz.py's training curves: per-batch losses under the per-epoch points,
on integer epoch ticks, even for a run of one epoch."""
import numpy as np
import pytest

from tinyres.viz import plot_history


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
