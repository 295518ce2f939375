"""tinyres.train: the loop learns, is reproducible, stops on divergence, writes its files,
stops cleanly on Ctrl-C and resumes bit for bit.

All runs use a tiny CIFAR-style ResNet-8 (width 4) on the synthetic data set, so the
whole file takes a few seconds.
"""
import csv
import json
import os
import signal
import time

import numpy as np
import pytest

import tinyres as tr
from tinyres import data, models
from tinyres.checkpoint import load_checkpoint
from tinyres.interrupt import GracefulInterrupt
from tinyres.optim import SGD, Adam
from tinyres.optim.lr_scheduler import CosineAnnealingLR
from tinyres.train import (BATCH_LOSS, HISTORY_COLUMNS, TrainingDiverged, TrainingInterrupted,
                           evaluate, fit, seed_everything)

NUM_CLASSES = 4


@pytest.fixture(autouse=True)
def numpy_backend():
    with tr.use_backend("numpy"):
        yield


def make_run(lr=0.05, seed=0, train=None, batch_size=32, transform=None):
    """(model, train_loader, test_loader, optimizer) for a tiny reproducible run."""
    train_set, test_set = data.synthetic(num_samples=320, image_shape=(1, 8, 8),
                                         num_classes=NUM_CLASSES, seed=0)
    train_set = train if train is not None else train_set
    seed_everything(seed)
    model = models.cifar_resnet(8, num_classes=NUM_CLASSES, in_channels=1, width=4)
    optimizer = SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=1e-4)
    train_loader = data.DataLoader(train_set, batch_size, shuffle=True, seed=seed,
                                   transform=transform)
    test_loader = data.DataLoader(test_set, 64)
    return model, train_loader, test_loader, optimizer


def without_times(history):
    return {key: value for key, value in history.items() if key != "seconds"}


def test_training_reduces_the_loss():
    model, train_loader, test_loader, optimizer = make_run()
    history = fit(model, train_loader, test_loader, optimizer, epochs=4, progress=False, log=None)
    assert set(history) == set(HISTORY_COLUMNS) | {BATCH_LOSS}
    assert history["epoch"] == [1, 2, 3, 4]
    assert [len(losses) for losses in history[BATCH_LOSS]] == [len(train_loader)] * 4
    # the epoch's training loss is the mean of its batch losses, weighted by batch size
    sizes = [32] * 8
    assert history["train_loss"][0] == pytest.approx(np.average(history[BATCH_LOSS][0],
                                                                weights=sizes))
    assert history["train_loss"][-1] < 0.7 * history["train_loss"][0]
    assert history["test_accuracy"][-1] > 0.5  # chance is 0.25
    assert model.training  # evaluation put the model back in training mode


def test_same_seed_gives_the_same_history():
    first = fit(*make_run(seed=3), epochs=2, progress=False, log=None)
    second = fit(*make_run(seed=3), epochs=2, progress=False, log=None)
    other = fit(*make_run(seed=4), epochs=2, progress=False, log=None)
    assert without_times(first) == without_times(second)
    assert first["train_loss"] != other["train_loss"]


@pytest.mark.parametrize("interval,expected_steps", [("epoch", 2), ("step", 2 * 8)])
def test_scheduler_steps_per_epoch_or_per_batch(interval, expected_steps):
    model, train_loader, test_loader, optimizer = make_run()
    assert len(train_loader) == 8
    scheduler = CosineAnnealingLR(optimizer, T_max=100)
    history = fit(model, train_loader, test_loader, optimizer, epochs=2, scheduler=scheduler,
                  scheduler_interval=interval, progress=False, log=None)
    assert scheduler.last_epoch == expected_steps
    assert history["lr"][0] == 0.05 and history["lr"][1] < 0.05


def test_scheduler_without_an_interval_is_refused():
    model, train_loader, test_loader, optimizer = make_run()
    with pytest.raises(ValueError, match="scheduler_interval='epoch'"):
        fit(model, train_loader, test_loader, optimizer, epochs=1,
            scheduler=CosineAnnealingLR(optimizer, 10))


def test_huge_learning_rate_stops_with_a_clear_message(tmp_path):
    model, train_loader, test_loader, optimizer = make_run(lr=1e6)
    with np.errstate(all="ignore"), pytest.raises(TrainingDiverged, match="smaller learning rate") as caught:
        fit(model, train_loader, test_loader, optimizer, epochs=3, out_dir=tmp_path,
            progress=False, log=None)
    assert caught.value.epoch >= 1
    assert set(caught.value.history) == set(HISTORY_COLUMNS) | {BATCH_LOSS}
    assert (tmp_path / "history.json").exists()


def test_poisoned_batch_is_blamed_on_the_data():
    train, _ = data.synthetic(num_samples=320, image_shape=(1, 8, 8), num_classes=NUM_CLASSES)
    train.images[5, 0, 3, 3] = np.nan
    model, train_loader, test_loader, optimizer = make_run(train=train)
    with np.errstate(all="ignore"), pytest.raises(TrainingDiverged, match="NaN or inf values") as caught:
        fit(model, train_loader, test_loader, optimizer, epochs=1, progress=False, log=None)
    assert caught.value.epoch == 1 and caught.value.history["epoch"] == []


def test_history_checkpoints_and_plots_are_written(tmp_path):
    model, train_loader, test_loader, optimizer = make_run()
    lines = []
    history = fit(model, train_loader, test_loader, optimizer, epochs=2, out_dir=tmp_path,
                  progress=False, log=lines.append, config={"note": "test"})
    assert len(lines) == 2 and "test loss" in lines[0]
    for name in ("history.json", "history.csv", "curves.png", "last.npz", "best.npz",
                 "config.json"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert json.loads((tmp_path / "history.json").read_text()) == history
    with open(tmp_path / "history.csv") as file:
        rows = list(csv.DictReader(file))
    assert [float(row["train_loss"]) for row in rows] == history["train_loss"]
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"

    # The last checkpoint restores the trained model exactly; it carries the whole run.
    fresh = models.cifar_resnet(8, num_classes=NUM_CLASSES, in_channels=1, width=4)
    fresh.load_state_dict(tr.load(tmp_path / "last.npz")["model"])
    assert evaluate(fresh, test_loader) == evaluate(model, test_loader)
    checkpoint = load_checkpoint(tmp_path / "last.npz")
    assert (checkpoint.epoch, checkpoint.epochs, checkpoint.step) == (2, 2, 16)
    assert checkpoint.run == {"note": "test"} and checkpoint.optimizer_type == "SGD"
    assert checkpoint.loader_state["epoch"] == 2
    assert checkpoint.history == history
    buffers = checkpoint.optimizer_state["state"]
    assert len(buffers) == len(list(model.parameters()))
    np.testing.assert_array_equal(buffers["0"]["momentum_buffer"],
                                  optimizer.state[model.conv1.weight]["momentum_buffer"])


def flat_arrays(archive, prefix=""):
    """Every array of a ``tr.load`` result, by its full name, metadata excluded."""
    for name, value in archive.items():
        if isinstance(value, dict):
            yield from flat_arrays(value, f"{prefix}{name}/")
        elif name != "metadata":
            yield prefix + name, value


def interrupt_after_epoch(epoch):
    """A ``log`` for fit that presses Ctrl-C (SIGINT to this process) once ``epoch`` ends."""
    def log(line):
        if line.startswith(f"epoch {epoch:>3}/"):
            os.kill(os.getpid(), signal.SIGINT)
    return log


def test_interrupted_and_resumed_run_is_bitwise_identical(tmp_path):
    """Ctrl-C after epoch 1, resume from last.npz: the same weights, momentum, schedule,
    history and augmentation draws as a run that never stopped."""
    def start(out_dir):
        crop = data.RandomCrop(8, padding=1)  # augmentation: the loader's random stream too
        model, train_loader, test_loader, optimizer = make_run(transform=crop)
        scheduler = CosineAnnealingLR(optimizer, T_max=3 * len(train_loader))
        return dict(model=model, train_loader=train_loader, test_loader=test_loader,
                    optimizer=optimizer, epochs=3, scheduler=scheduler,
                    scheduler_interval="step", out_dir=out_dir, progress=False,
                    config={"note": "resume test"})

    straight = fit(**start(tmp_path / "straight"), log=None)

    with pytest.raises(TrainingInterrupted) as caught:
        fit(**start(tmp_path / "stopped"), log=interrupt_after_epoch(1))
    assert caught.value.epoch == 1 and not caught.value.at_once
    assert caught.value.history["epoch"] == [1]
    checkpoint = load_checkpoint(tmp_path / "stopped" / "last.npz")
    assert checkpoint.epoch == 1
    # as in a new process: other weights and generator states until the resume sets them
    parts = start(tmp_path / "stopped")
    scramble = np.random.default_rng(123)
    for parameter in parts["model"].parameters():
        parameter.data[...] = scramble.standard_normal(parameter.shape)
    seed_everything(123)
    resumed = fit(**parts, log=None, resume_from=checkpoint)

    assert without_times(resumed) == without_times(straight)
    first = dict(flat_arrays(tr.load(tmp_path / "straight" / "last.npz")))
    second = dict(flat_arrays(tr.load(tmp_path / "stopped" / "last.npz")))
    assert first.keys() == second.keys()
    assert any(name.startswith("arrays/optimizer") for name in first)  # momentum buffers
    for name, array in first.items():
        assert second[name].dtype == array.dtype, name
        np.testing.assert_array_equal(second[name], array, err_msg=name)


def test_a_second_ctrl_c_stops_at_once(tmp_path):
    """The first Ctrl-C waits for the batch to end; a second one does not wait."""
    calls = []

    def slow_second_epoch(images, rng):
        calls.append(len(images))
        if len(calls) == len(train_loader) + 1:   # epoch 2, batch 1
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(30)     # a batch that would take long: Ctrl-C must not wait for it
        return images

    model, train_loader, test_loader, optimizer = make_run(transform=slow_second_epoch)
    started = time.perf_counter()
    with pytest.raises(TrainingInterrupted) as caught:
        fit(model, train_loader, test_loader, optimizer, epochs=3, out_dir=tmp_path,
            progress=False, log=None)
    assert time.perf_counter() - started < 20
    assert caught.value.at_once and caught.value.epoch == 1
    assert load_checkpoint(tmp_path / "last.npz").epoch == 1
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back


def test_graceful_interrupt_outside_training_changes_nothing():
    previous = signal.getsignal(signal.SIGINT)
    with GracefulInterrupt(notice="") as interrupt:
        assert signal.getsignal(signal.SIGINT) != previous
        interrupt.check()  # no Ctrl-C yet: nothing happens
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.01)
        assert interrupt.requested
        with pytest.raises(KeyboardInterrupt):
            interrupt.check()
    assert signal.getsignal(signal.SIGINT) is previous


def test_resume_refuses_another_optimizer(tmp_path):
    model, train_loader, test_loader, optimizer = make_run()
    fit(model, train_loader, test_loader, optimizer, epochs=1, out_dir=tmp_path,
        progress=False, log=None)
    checkpoint = load_checkpoint(tmp_path / "last.npz")
    other = Adam(model.parameters())
    with pytest.raises(ValueError, match="trained with the optimizer SGD, not Adam"):
        fit(model, train_loader, test_loader, other, epochs=2, resume_from=checkpoint,
            progress=False, log=None)
