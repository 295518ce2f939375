"""tinyres.train: the loop learns, is reproducible, stops on divergence, writes its files.

All runs use a tiny CIFAR-style ResNet-8 (width 4) on the synthetic data set, so the
whole file takes a few seconds.
"""
import csv
import json

import numpy as np
import pytest

import tinyres as tr
from tinyres import data, models
from tinyres.optim import SGD
from tinyres.optim.lr_scheduler import CosineAnnealingLR
from tinyres.train import HISTORY_COLUMNS, TrainingDiverged, evaluate, fit, seed_everything

NUM_CLASSES = 4


@pytest.fixture(autouse=True)
def numpy_backend():
    with tr.use_backend("numpy"):
        yield


def make_run(lr=0.05, seed=0, train=None, batch_size=32):
    """(model, train_loader, test_loader, optimizer) for a tiny reproducible run."""
    train_set, test_set = data.synthetic(num_samples=320, image_shape=(1, 8, 8),
                                         num_classes=NUM_CLASSES, seed=0)
    train_set = train if train is not None else train_set
    seed_everything(seed)
    model = models.cifar_resnet(8, num_classes=NUM_CLASSES, in_channels=1, width=4)
    optimizer = SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=1e-4)
    train_loader = data.DataLoader(train_set, batch_size, shuffle=True, seed=seed)
    test_loader = data.DataLoader(test_set, 64)
    return model, train_loader, test_loader, optimizer


def without_times(history):
    return {key: value for key, value in history.items() if key != "seconds"}


def test_training_reduces_the_loss():
    model, train_loader, test_loader, optimizer = make_run()
    history = fit(model, train_loader, test_loader, optimizer, epochs=4, progress=False, log=None)
    assert set(history) == set(HISTORY_COLUMNS)
    assert history["epoch"] == [1, 2, 3, 4]
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
    assert set(caught.value.history) == set(HISTORY_COLUMNS)
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

    # The last checkpoint restores the trained model exactly.
    fresh = models.cifar_resnet(8, num_classes=NUM_CLASSES, in_channels=1, width=4)
    fresh.load_state_dict(tr.load(tmp_path / "last.npz"))
    assert evaluate(fresh, test_loader) == evaluate(model, test_loader)
