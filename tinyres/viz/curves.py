"""Training curves: one run's loss and error per epoch, and He et al.'s degradation figure.

Both read the history that :func:`tinyres.train.fit` returns (one column per quantity,
one entry per epoch) and return their figure; given ``path`` they also write it.
"""
from .figures import new_figure, save

# One colour per depth, shared by the panels, so the same depth is easy to follow.
DEPTH_COLORS = ("tab:orange", "tab:red", "tab:blue", "tab:green", "tab:purple", "tab:brown")


def _percent_error(accuracies):
    return [None if value is None else 100.0 * (1.0 - value) for value in accuracies]


def _plot_if_present(axes, epochs, values, **style):
    points = [(epoch, value) for epoch, value in zip(epochs, values) if value is not None]
    if points:
        axes.plot(*zip(*points), **style)


def _batch_positions(batch_losses):
    """Each batch's place on the epoch axis: batch b of k in epoch e sits at e - 1 + (b + 1) / k.

    So epoch e's last batch is at x = e, where the epoch's point is drawn.
    """
    positions, losses = [], []
    for epoch, epoch_losses in enumerate(batch_losses, start=1):
        count = len(epoch_losses)
        positions += [epoch - 1 + (batch + 1) / count for batch in range(count)]
        losses += list(epoch_losses)
    return positions, losses


def plot_history(history, path=None, title=None):
    """Loss (left) and error in % (right) per epoch, training and test, of one run.

    history: the dict returned by :func:`tinyres.train.fit` (columns ``epoch``,
    ``train_loss``, ``test_loss``, ``train_accuracy``, ``test_accuracy``, and optionally
    ``batch_loss``, one list of batch losses per epoch, drawn as a faint line under the
    training loss so that even a one-epoch run shows how the loss fell).  The epoch axis
    has integer ticks and starts at 0, the start of training.
    """
    from matplotlib.ticker import MaxNLocator

    figure = new_figure(10, 4)
    loss_axes, error_axes = figure.subplots(1, 2)
    epochs = history["epoch"]
    marker = "o" if len(epochs) < 30 else None
    batch_losses = history.get("batch_loss") or []
    if any(batch_losses):
        positions, losses = _batch_positions(batch_losses)
        loss_axes.plot(positions, losses, color="tab:blue", linewidth=0.8, alpha=0.3,
                       label="train (each batch)")
    for split, style, color in (("train", "-", "tab:blue"), ("test", "--", "tab:orange")):
        _plot_if_present(loss_axes, epochs, history[f"{split}_loss"], linestyle=style,
                         marker=marker, color=color, label=split)
        _plot_if_present(error_axes, epochs, _percent_error(history[f"{split}_accuracy"]),
                         linestyle=style, marker=marker, color=color, label=split)
    loss_axes.set(xlabel="epoch", ylabel="cross-entropy loss", title="loss")
    error_axes.set(xlabel="epoch", ylabel="error (%)", title="error")
    for axes in (loss_axes, error_axes):
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_xlim(0, max(epochs, default=1) + 0.1)
        axes.grid(alpha=0.3)
        axes.legend()
    if title:
        figure.suptitle(title)
    return save(figure, path)


def plot_degradation(results, path=None, title=None, show_test=True):
    """He et al.'s Fig. 6: training error of plain (left) and residual (right) networks.

    results: ``{name: history}`` with names like ``"plain-20"`` and ``"resnet-56"``
    (a name starting with ``plain`` goes to the left panel).  Training error is drawn
    as a solid line; with ``show_test`` the test error as a thin dashed line of the same
    colour.  The degradation problem shows as the deeper *plain* network having the
    higher *training* error, while the deeper residual network has the lower.
    """
    figure = new_figure(11, 4.2)
    panels = figure.subplots(1, 2, sharey=True)
    depths = sorted({_depth(name) for name in results})
    colors = {depth: DEPTH_COLORS[index % len(DEPTH_COLORS)] for index, depth in enumerate(depths)}
    for axes, plain, panel_title in ((panels[0], True, "plain networks"),
                                     (panels[1], False, "residual networks")):
        for name, history in sorted(results.items(), key=lambda item: _depth(item[0])):
            if name.startswith("plain") != plain:
                continue
            color = colors[_depth(name)]
            epochs = history["epoch"]
            _plot_if_present(axes, epochs, _percent_error(history["train_accuracy"]),
                             color=color, linewidth=2, label=f"{name} train")
            if show_test:
                _plot_if_present(axes, epochs, _percent_error(history["test_accuracy"]),
                                 color=color, linewidth=1, linestyle="--", label=f"{name} test")
        axes.set(xlabel="epoch", title=panel_title)
        axes.grid(alpha=0.3)
        axes.legend()
    panels[0].set_ylabel("error (%)")
    figure.suptitle(title or "Training error of plain vs residual networks "
                             "(solid: training, dashed: test)")
    return save(figure, path)


def _depth(name):
    """The depth in a name such as ``"plain-56"`` or ``"resnet20"`` (0 if there is none)."""
    digits = "".join(character for character in name.split("-")[-1] if character.isdigit())
    return int(digits) if digits else 0
