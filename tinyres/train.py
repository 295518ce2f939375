"""The training loop used by the ``tinyres`` command and by the lessons.

One epoch is the textbook loop, once per batch of the training loader::

    logits = model(images)                      # (B, num_classes)
    loss = F.cross_entropy(logits, labels)      # mean over the batch
    optimizer.zero_grad(); loss.backward(); optimizer.step()

then an evaluation pass over the test loader (``model.eval()``, under ``no_grad``).
:func:`fit` repeats that for a number of epochs and keeps the bookkeeping out of the
way: a progress bar, the history (JSON and CSV), the best and last checkpoints and
the loss/error plots in ``out_dir``, and a clear stop -- :class:`TrainingDiverged` --
when the loss stops being a finite number.

Reproducibility: everything random is seeded.  The caller seeds the weight
initialisation (:func:`seed_everything` before building the model); the loaders
draw their shuffles and augmentations from their own ``seed`` and the epoch number,
which :func:`fit` sets, so the same seed on the same backend gives the same history.
"""
import csv
import json
import math
import numbers
import os
import random
import time

import numpy as np
from tqdm import tqdm  # the text bar: it works in terminals and notebooks alike

from . import functional as F
from .autograd import no_grad
from .tensor import tensor

# The per-epoch columns of the history, in the order of the CSV file: ``lr`` is the
# learning rate at the start of the epoch, the train_ columns are running means over
# the epoch's batches (in training mode), ``seconds`` the time of the training pass.
HISTORY_COLUMNS = ("epoch", "lr", "train_loss", "train_accuracy", "test_loss", "test_accuracy",
                   "seconds")
SCHEDULER_INTERVALS = ("epoch", "step")


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; training stopped.

    ``history`` holds the completed epochs, ``epoch`` and ``step`` say where it happened.
    """

    def __init__(self, message, epoch, step, history=None):
        super().__init__(message)
        self.epoch, self.step, self.history = epoch, step, history


def seed_everything(seed):
    """Seed every random number generator a model may draw its initial weights from.

    That is Python's ``random``, NumPy's global generator and the generator of
    ``tinyres.nn.init``.  Call it before building the model.
    """
    from .nn.init import manual_seed

    random.seed(seed)
    np.random.seed(seed)
    manual_seed(seed)


def count_correct(logits, labels):
    """How many rows of ``logits`` (N, C) have their largest value at ``labels`` (N,)."""
    return int((logits.numpy().argmax(axis=1) == np.asarray(labels)).sum())


def evaluate(model, loader):
    """Mean loss and accuracy of ``model`` over a loader, in evaluation mode.

    ``model.eval()`` makes batch norm use its running statistics, and ``no_grad``
    skips recording the graph.  The model's mode is restored afterwards.
    Returns ``{"loss": mean cross-entropy, "accuracy": fraction correct}``.
    """
    total_loss, correct, count = 0.0, 0, 0
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            for images, labels in loader:
                logits = model(tensor(images))
                total_loss += F.cross_entropy(logits, labels).item() * len(labels)
                correct += count_correct(logits, labels)
                count += len(labels)
    finally:
        model.train(was_training)
    if count == 0:
        raise ValueError("evaluate: the loader yielded no batches")
    return {"loss": total_loss / count, "accuracy": correct / count}


def _diverged(epoch, step, batch, loss_value, lr, images):
    """Build the error that explains a non-finite loss and what to try next."""
    if not np.all(np.isfinite(images)):
        cause = "this batch of images itself contains NaN or inf values; check the data"
    else:
        cause = (f"the weights blew up: try a smaller learning rate than {lr:g}, a warm-up "
                 "(LinearWarmup), or check the model's initialisation")
    message = (f"training diverged: the loss became {loss_value} at epoch {epoch}, batch "
               f"{batch} (step {step}); {cause}.")
    return TrainingDiverged(message, epoch, step)


def train_one_epoch(model, loader, optimizer, epoch, scheduler=None, scheduler_interval=None,
                    progress=None, first_step=0):
    """One pass over the training loader; returns ``(mean loss, accuracy, steps taken)``.

    With ``scheduler_interval="step"`` the scheduler steps after every batch.
    ``progress`` is a tqdm bar (or None) showing the running loss and accuracy.
    Raises :class:`TrainingDiverged` on a NaN/inf loss, before the bad gradient is used.
    """
    model.train()
    total_loss, correct, count, step = 0.0, 0, 0, first_step
    for batch, (images, labels) in enumerate(loader):
        logits = model(tensor(images))
        loss = F.cross_entropy(logits, labels)
        loss_value = loss.item()
        if not math.isfinite(loss_value):
            raise _diverged(epoch, step, batch, loss_value,
                            optimizer.param_groups[0]["lr"], images)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if scheduler is not None and scheduler_interval == "step":
            scheduler.step()
        step += 1
        total_loss += loss_value * len(labels)
        correct += count_correct(logits, labels)
        count += len(labels)
        if progress is not None:
            progress.update(1)
            progress.set_postfix(loss=f"{total_loss / count:.4f}",
                                 acc=f"{100 * correct / count:.2f}%", refresh=False)
    if count == 0:
        raise ValueError("train_one_epoch: the training loader yielded no batches")
    return total_loss / count, correct / count, step - first_step


def fit(model, train_loader, test_loader, optimizer, epochs, scheduler=None,
        scheduler_interval=None, out_dir=None, progress=True, log=tqdm.write, config=None):
    """Train ``model`` for ``epochs`` epochs, evaluating after each; returns the history.

    scheduler_interval: ``"epoch"`` (``scheduler.step()`` once after each epoch, so
    ``T_max``/milestones count epochs) or ``"step"`` (after every batch, so they count
    iterations, as in the ResNet paper).  Required when a scheduler is given.
    test_loader: may be None (the test columns are then None and the best checkpoint
    follows the training accuracy).
    out_dir: when given, written after every epoch: ``history.json``, ``history.csv``,
    ``curves.png``, the checkpoints ``last.npz`` and ``best.npz`` (the epoch with the best
    test accuracy; load with ``tr.load``), and ``config.json`` when ``config`` is a dict.
    log: called with one summary line per epoch (None for silence).

    The history maps each of HISTORY_COLUMNS to a list with one value per epoch.
    Raises :class:`TrainingDiverged` (history attached, files already written) when the
    loss becomes NaN or inf.
    """
    if scheduler is not None and scheduler_interval not in SCHEDULER_INTERVALS:
        raise ValueError(f"fit: say when the scheduler steps: scheduler_interval='epoch' (once "
                         f"per epoch) or 'step' (once per batch), got {scheduler_interval!r}")
    if not isinstance(epochs, numbers.Integral) or epochs < 1:
        raise ValueError(f"fit: epochs must be a positive int, got {epochs!r}")
    if out_dir is not None:
        os.makedirs(out_dir, exist_ok=True)
        if config is not None:
            _write_json(os.path.join(out_dir, "config.json"), config)
    history = {column: [] for column in HISTORY_COLUMNS}
    best_accuracy, step = -1.0, 0
    title = _title(config)
    for epoch in range(1, epochs + 1):
        if hasattr(train_loader, "set_epoch"):
            train_loader.set_epoch(epoch - 1)  # the shuffle depends on the epoch, not on past runs
        lr = optimizer.param_groups[0]["lr"]
        bar = tqdm(total=len(train_loader), desc=f"epoch {epoch}/{epochs}", leave=False,
                   disable=not progress, dynamic_ncols=True)
        started = time.perf_counter()
        try:
            train_loss, train_accuracy, steps = train_one_epoch(
                model, train_loader, optimizer, epoch, scheduler, scheduler_interval, bar,
                first_step=step)
        except TrainingDiverged as error:
            error.history = history  # the completed epochs, for a look at what went wrong
            if out_dir is not None:
                save_history(history, out_dir, title)
            raise
        finally:
            bar.close()
        seconds = time.perf_counter() - started
        step += steps
        if scheduler is not None and scheduler_interval == "epoch":
            scheduler.step()
        test = evaluate(model, test_loader) if test_loader is not None else None
        record = dict(epoch=epoch, lr=lr, train_loss=train_loss, train_accuracy=train_accuracy,
                      test_loss=None if test is None else test["loss"],
                      test_accuracy=None if test is None else test["accuracy"], seconds=seconds)
        for column in HISTORY_COLUMNS:
            history[column].append(record[column])
        if log is not None:
            log(format_epoch(record, epochs))
        if out_dir is not None:
            accuracy = test["accuracy"] if test is not None else train_accuracy
            _save_checkpoints(model, out_dir, is_best=accuracy > best_accuracy)
            best_accuracy = max(best_accuracy, accuracy)
            save_history(history, out_dir, title)
    return history


def format_epoch(record, epochs):
    """One line summarising an epoch, e.g. for the log."""
    line = (f"epoch {record['epoch']:>3}/{epochs}  lr {record['lr']:.4g}  "
            f"train loss {record['train_loss']:.4f} acc {100 * record['train_accuracy']:6.2f}%")
    if record["test_loss"] is not None:
        line += (f"  test loss {record['test_loss']:.4f} "
                 f"acc {100 * record['test_accuracy']:6.2f}%")
    return line + f"  ({record['seconds']:.1f} s)"


def best_epoch(history):
    """The record of the epoch with the highest test (else training) accuracy, as a dict."""
    key = "test_accuracy" if history["test_accuracy"] and history["test_accuracy"][0] is not None \
        else "train_accuracy"
    index = int(np.argmax(history[key]))
    return {column: history[column][index] for column in HISTORY_COLUMNS}


def save_history(history, out_dir, title=None):
    """Write ``history.json``, ``history.csv`` and ``curves.png`` (loss and error plots)."""
    from .viz import plot_history

    _write_json(os.path.join(out_dir, "history.json"), history)
    with open(os.path.join(out_dir, "history.csv"), "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(HISTORY_COLUMNS)
        for row in zip(*(history[column] for column in HISTORY_COLUMNS)):
            writer.writerow(["" if value is None else value for value in row])
    if history["epoch"]:
        plot_history(history, path=os.path.join(out_dir, "curves.png"), title=title)


def load_history(path):
    """Read a ``history.json`` written by :func:`fit` (a file or the run's folder)."""
    if os.path.isdir(path):
        path = os.path.join(path, "history.json")
    with open(path) as file:
        return json.load(file)


def _save_checkpoints(model, out_dir, is_best):
    from .serialization import save

    state = model.state_dict()
    save(state, os.path.join(out_dir, "last.npz"))
    if is_best:
        save(state, os.path.join(out_dir, "best.npz"))


def _title(config):
    """A plot title such as "resnet20 on mnist5k", from a run's config when it has those keys."""
    if isinstance(config, dict) and "model" in config and "dataset" in config:
        return f"{config['model']} on {config['dataset']}"
    return None


def _write_json(path, data):
    with open(path, "w") as file:
        json.dump(data, file, indent=2, default=_to_plain)


def _to_plain(value):
    """Make NumPy scalars and arrays, and tuples of them, JSON-serialisable."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)
