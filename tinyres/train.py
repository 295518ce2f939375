"""The training loop used by the ``tinyres`` command and by the lessons.

One epoch is the textbook loop, once per batch of the training loader::

    logits = model(images)                      # (B, num_classes)
    loss = F.cross_entropy(logits, labels)      # mean over the batch
    optimizer.zero_grad(); loss.backward(); optimizer.step()

then an evaluation pass over the test loader (``model.eval()``, under ``no_grad``).
:func:`fit` repeats that for a number of epochs and keeps the bookkeeping out of the
way: a progress bar, the history (JSON and CSV), the loss/error plots, and checkpoints
that carry the whole run (:mod:`tinyres.checkpoint`) in ``out_dir``; a clear stop --
:class:`TrainingDiverged` -- when the loss stops being a finite number; and Ctrl-C as a
request to stop that keeps every completed epoch (:class:`TrainingInterrupted`).

Reproducibility: everything random is seeded.  The caller seeds the weight
initialisation (:func:`seed_everything` before building the model); the loaders
draw their shuffles and augmentations from their own ``seed`` and the epoch number,
which :func:`fit` sets, so the same seed on the same backend gives the same history.
A run resumed from its checkpoint (``fit(..., resume_from=checkpoint)``) continues
bit for bit as if it had never stopped.
"""
import copy
import csv
import io
import json
import math
import numbers
import os
import random
import shutil
import time

import numpy as np
from tqdm import tqdm  # the text bar: it works in terminals and notebooks alike

from . import functional as F
from .autograd import no_grad
from .checkpoint import RunCheckpoint, restore_run, rng_state, save_checkpoint
from .interrupt import GracefulInterrupt, InterruptRequested
from .nn.parallel import unwrap
from .serialization import write_atomically
from .tensor import tensor

# The per-epoch columns of the history, in the order of the CSV file: ``lr`` is the
# learning rate at the start of the epoch, the train_ columns are running means over
# the epoch's batches (in training mode), ``seconds`` the time of the training pass.
HISTORY_COLUMNS = ("epoch", "lr", "train_loss", "train_accuracy", "test_loss", "test_accuracy",
                   "seconds")
# One more entry per epoch, kept out of the CSV: the list of that epoch's batch losses.
BATCH_LOSS = "batch_loss"
SCHEDULER_INTERVALS = ("epoch", "step")


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; training stopped.

    ``history`` holds the completed epochs, ``epoch`` and ``step`` say where it happened.
    """

    def __init__(self, message, epoch, step, history=None):
        super().__init__(message)
        self.epoch, self.step, self.history = epoch, step, history


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped training; every completed epoch is kept.

    ``epoch``: the last complete epoch (0 if none) -- the one ``last.npz`` holds when
    there is an ``out_dir``; ``history``: the completed epochs; ``at_once``: True when a
    second Ctrl-C stopped it without waiting for the batch to end.  A KeyboardInterrupt,
    so code that stops on Ctrl-C still stops.
    """

    def __init__(self, epoch, epochs, history, out_dir=None, at_once=False):
        self.epoch, self.epochs, self.history = epoch, epochs, history
        self.out_dir, self.at_once = out_dir, at_once
        kept = (f"; {os.path.join(out_dir, 'last.npz')} holds epoch {epoch}"
                if out_dir is not None and epoch else "")
        super().__init__(f"training stopped by Ctrl-C after {epoch} of {epochs} epochs{kept}")


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


def evaluate(model, loader, interrupt=None, keep_predictions=False):
    """Mean loss and accuracy of ``model`` over a loader, in evaluation mode.

    ``model.eval()`` makes batch norm use its running statistics, and ``no_grad``
    skips recording the graph.  The model's mode is restored afterwards.
    Returns ``{"loss": mean cross-entropy, "accuracy": fraction correct}``, and with
    ``keep_predictions`` also ``"labels"`` and ``"predictions"``, (N,) int64 arrays.
    interrupt: a :class:`~tinyres.interrupt.GracefulInterrupt`, checked between batches.
    """
    total_loss, correct, count = 0.0, 0, 0
    labels_seen, predictions = [], []
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            for images, labels in loader:
                logits = model(tensor(images))
                total_loss += F.cross_entropy(logits, labels).item() * len(labels)
                correct += count_correct(logits, labels)
                count += len(labels)
                if keep_predictions:
                    labels_seen.append(np.asarray(labels))
                    predictions.append(logits.numpy().argmax(axis=1))
                if interrupt is not None:
                    interrupt.check()
    finally:
        model.train(was_training)
    if count == 0:
        raise ValueError("evaluate: the loader yielded no batches")
    result = {"loss": total_loss / count, "accuracy": correct / count}
    if keep_predictions:
        result["labels"] = np.concatenate(labels_seen).astype(np.int64)
        result["predictions"] = np.concatenate(predictions).astype(np.int64)
    return result


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
                    progress=None, first_step=0, interrupt=None, batch_losses=None):
    """One pass over the training loader; returns ``(mean loss, accuracy, steps taken)``.

    With ``scheduler_interval="step"`` the scheduler steps after every batch.
    ``progress`` is a tqdm bar (or None) showing the running loss and accuracy.
    interrupt: a :class:`~tinyres.interrupt.GracefulInterrupt`, checked after each batch.
    batch_losses: a list that receives each batch's loss.
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
        if batch_losses is not None:
            batch_losses.append(loss_value)
        if progress is not None:
            progress.update(1)
            progress.set_postfix(loss=f"{total_loss / count:.4f}",
                                 acc=f"{100 * correct / count:.2f}%", refresh=False)
        if interrupt is not None:
            interrupt.check()
    if count == 0:
        raise ValueError("train_one_epoch: the training loader yielded no batches")
    return total_loss / count, correct / count, step - first_step


def new_history():
    """An empty history: each of HISTORY_COLUMNS and BATCH_LOSS mapped to an empty list."""
    return {column: [] for column in HISTORY_COLUMNS + (BATCH_LOSS,)}


def fit(model, train_loader, test_loader, optimizer, epochs, scheduler=None,
        scheduler_interval=None, out_dir=None, progress=True, log=tqdm.write, config=None,
        resume_from=None):
    """Train ``model`` for ``epochs`` epochs, evaluating after each; returns the history.

    scheduler_interval: ``"epoch"`` (``scheduler.step()`` once after each epoch, so
    ``T_max``/milestones count epochs) or ``"step"`` (after every batch, so they count
    iterations, as in the ResNet paper).  Required when a scheduler is given.
    test_loader: may be None (the test columns are then None and the best checkpoint
    follows the training accuracy).
    out_dir: when given, written after every epoch: ``history.json``, ``history.csv``,
    ``curves.png`` and the run checkpoints ``last.npz`` and ``best.npz`` (the epoch with
    the best test accuracy): model, optimizer, schedule, loader and generator states,
    the history and ``config`` (see :mod:`tinyres.checkpoint`); ``config.json`` once.
    config: a JSON-able dict describing the run (model, dataset, normalization, ...);
    ``tinyres evaluate`` and ``predict`` rebuild the model from it.
    log: called with one summary line per epoch (None for silence).
    resume_from: a :class:`~tinyres.checkpoint.RunCheckpoint` of this run: its states are
    loaded into the model, optimizer, scheduler and loader, and training continues after
    its epoch, exactly as if it had never stopped.

    The history maps each of HISTORY_COLUMNS to a list with one value per epoch, and
    BATCH_LOSS to one list of batch losses per epoch.
    Raises :class:`TrainingDiverged` (history attached, files already written) when the
    loss becomes NaN or inf.  Ctrl-C: the first stops training after the current batch,
    a second one at once; both raise :class:`TrainingInterrupted`, with the completed
    epochs attached and saved.
    """
    if scheduler is not None and scheduler_interval not in SCHEDULER_INTERVALS:
        raise ValueError(f"fit: say when the scheduler steps: scheduler_interval='epoch' (once "
                         f"per epoch) or 'step' (once per batch), got {scheduler_interval!r}")
    if not isinstance(epochs, numbers.Integral) or epochs < 1:
        raise ValueError(f"fit: epochs must be a positive int, got {epochs!r}")
    history, step, best_accuracy, completed = new_history(), 0, -1.0, 0
    if resume_from is not None:
        if resume_from.epoch > epochs:
            raise ValueError(f"fit: the checkpoint is at epoch {resume_from.epoch}, past "
                             f"epochs={epochs}")
        restore_run(resume_from, model, optimizer, scheduler, scheduler_interval, train_loader)
        history = copy.deepcopy(resume_from.history)
        step, completed = resume_from.step, resume_from.epoch
        best_accuracy = resume_from.best_accuracy
    if out_dir is not None:
        os.makedirs(out_dir, exist_ok=True)
        if config is not None:
            _write_json(os.path.join(out_dir, "config.json"), config)
    title = _title(config)
    with GracefulInterrupt() as interrupt:
        try:
            for epoch in range(completed + 1, epochs + 1):
                record, steps = _run_epoch(model, train_loader, test_loader, optimizer, scheduler,
                                           scheduler_interval, epoch, epochs, step, progress,
                                           interrupt)
                step += steps
                for column, value in record.items():
                    history[column].append(value)
                if log is not None:
                    log(format_epoch(record, epochs))
                accuracy = record["test_accuracy"]
                accuracy = record["train_accuracy"] if accuracy is None else accuracy
                is_best, best_accuracy = accuracy > best_accuracy, max(best_accuracy, accuracy)
                if out_dir is not None:
                    checkpoint = _checkpoint(model, optimizer, scheduler, scheduler_interval,
                                             train_loader, epoch, epochs, step, history,
                                             best_accuracy, config)
                    _save_checkpoints(checkpoint, out_dir, is_best)
                completed = epoch   # the checkpoint on disk now holds this epoch
                if out_dir is not None:
                    save_history(history, out_dir, title)
        except TrainingDiverged as error:
            error.history = history  # the completed epochs, for a look at what went wrong
            if out_dir is not None:
                save_history(history, out_dir, title)
            raise
        except KeyboardInterrupt as error:
            kept = {column: values[:completed] for column, values in history.items()}
            raise TrainingInterrupted(completed, epochs, kept, out_dir,
                                      at_once=not isinstance(error, InterruptRequested)) from None
    return history


def _run_epoch(model, train_loader, test_loader, optimizer, scheduler, scheduler_interval,
               epoch, epochs, first_step, progress, interrupt):
    """Train one epoch, step a per-epoch scheduler, evaluate: ``(history record, steps)``."""
    interrupt.check()
    if hasattr(train_loader, "set_epoch"):
        train_loader.set_epoch(epoch - 1)  # the shuffle depends on the epoch, not on past runs
    lr = optimizer.param_groups[0]["lr"]
    batch_losses = []
    bar = tqdm(total=len(train_loader), desc=f"epoch {epoch}/{epochs}", leave=False,
               disable=not progress, dynamic_ncols=True)
    started = time.perf_counter()
    try:
        train_loss, train_accuracy, steps = train_one_epoch(
            model, train_loader, optimizer, epoch, scheduler, scheduler_interval, bar,
            first_step=first_step, interrupt=interrupt, batch_losses=batch_losses)
    finally:
        bar.close()
    seconds = time.perf_counter() - started
    if scheduler is not None and scheduler_interval == "epoch":
        scheduler.step()
    test = evaluate(model, test_loader, interrupt) if test_loader is not None else None
    record = dict(epoch=epoch, lr=lr, train_loss=train_loss, train_accuracy=train_accuracy,
                  test_loss=None if test is None else test["loss"],
                  test_accuracy=None if test is None else test["accuracy"], seconds=seconds)
    record[BATCH_LOSS] = batch_losses
    return record, steps


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
    """Write ``history.json``, ``history.csv`` and ``curves.png`` (loss and error plots).

    Each file is replaced atomically, so an interruption leaves the previous version.
    """
    from .viz import plot_history

    _write_json(os.path.join(out_dir, "history.json"), history)
    rows = io.StringIO(newline="")
    writer = csv.writer(rows)
    writer.writerow(HISTORY_COLUMNS)
    for row in zip(*(history[column] for column in HISTORY_COLUMNS)):
        writer.writerow(["" if value is None else value for value in row])
    write_atomically(os.path.join(out_dir, "history.csv"),
                     lambda file: file.write(rows.getvalue().encode("utf-8")))
    if history["epoch"]:
        figure = plot_history(history, title=title)
        write_atomically(os.path.join(out_dir, "curves.png"),
                         lambda file: figure.savefig(file, format="png", dpi=120))


def load_history(path):
    """Read a ``history.json`` written by :func:`fit` (a file or the run's folder)."""
    if os.path.isdir(path):
        path = os.path.join(path, "history.json")
    with open(path) as file:
        return json.load(file)


def _checkpoint(model, optimizer, scheduler, scheduler_interval, train_loader, epoch, epochs,
                step, history, best_accuracy, config):
    """The run's state after ``epoch``: a :class:`~tinyres.checkpoint.RunCheckpoint`."""
    return RunCheckpoint(
        epoch=epoch, epochs=epochs, step=step, model_state=unwrap(model).state_dict(),
        optimizer_type=type(optimizer).__name__, optimizer_state=optimizer.state_dict(),
        scheduler_type=None if scheduler is None else type(scheduler).__name__,
        scheduler_state=None if scheduler is None else scheduler.state_dict(),
        scheduler_interval=None if scheduler is None else scheduler_interval,
        loader_state=train_loader.state_dict() if hasattr(train_loader, "state_dict") else None,
        rng_state=rng_state(), history=history, best_accuracy=best_accuracy, run=config)


def _save_checkpoints(checkpoint, out_dir, is_best):
    """``last.npz`` always, and a copy as ``best.npz`` when this epoch is the best so far."""
    last = os.path.join(out_dir, "last.npz")
    save_checkpoint(checkpoint, last)
    if is_best:
        with open(last, "rb") as source:
            write_atomically(os.path.join(out_dir, "best.npz"),
                             lambda file: shutil.copyfileobj(source, file))


def _title(config):
    """A plot title such as "resnet20 on mnist5k", from a run's config when it has those keys."""
    if isinstance(config, dict) and "model" in config and "dataset" in config:
        return f"{config['model']} on {config['dataset']}"
    return None


def _write_json(path, data):
    text = json.dumps(data, indent=2, default=_to_plain)
    write_atomically(path, lambda file: file.write(text.encode("utf-8")))


def _to_plain(value):
    """Make NumPy scalars and arrays, and tuples of them, JSON-serialisable."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)
