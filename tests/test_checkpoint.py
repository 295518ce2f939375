"""Tests for tinyres/checkpoint.py: a run checkpoint holds everything a run needs, is plain
data (an .npz with JSON inside), and refuses files that are damaged or of another format."""
import json
import random

import numpy as np
import pytest

import tinyres as tr
from tinyres import models
from tinyres.checkpoint import (FORMAT_VERSION, RunCheckpoint, checkpoint_path, load_checkpoint,
                                read_metadata, restore_rng_state, rng_state, save_checkpoint)
from tinyres.nn.init import default_generator
from tinyres.optim import Adam
from tinyres.optim.lr_scheduler import LinearWarmup, MultiStepLR
from tinyres.serialization import CheckpointError
from tinyres.train import seed_everything


def trained_parts(steps=3):
    """A tiny model, Adam and a warm-up schedule after a few steps with random gradients."""
    seed_everything(0)
    model = models.cifar_resnet(8, num_classes=3, in_channels=1, width=2)
    optimizer = Adam(model.parameters(), lr=0.01)
    scheduler = LinearWarmup(optimizer, 2, after=MultiStepLR(optimizer, [2]))
    rng = np.random.default_rng(0)
    for _ in range(steps):
        for parameter in model.parameters():
            parameter.grad = tr.tensor(rng.standard_normal(parameter.shape).astype(np.float32))
        optimizer.step()
        scheduler.step()
    return model, optimizer, scheduler


def make_checkpoint():
    model, optimizer, scheduler = trained_parts()
    return RunCheckpoint(epoch=2, epochs=5, step=3, model_state=model.state_dict(),
                         optimizer_type="Adam", optimizer_state=optimizer.state_dict(),
                         scheduler_type="LinearWarmup", scheduler_state=scheduler.state_dict(),
                         scheduler_interval="step", loader_state={"epoch": 2, "seed": 0},
                         rng_state=rng_state(), history={"epoch": [1, 2], "lr": [0.1, 0.05]},
                         best_accuracy=0.5, run={"model": "resnet8", "width": 2})


def test_round_trip_restores_every_state(tmp_path):
    path = tmp_path / "last.npz"
    save_checkpoint(make_checkpoint(), path)
    loaded = load_checkpoint(path)
    assert (loaded.epoch, loaded.epochs, loaded.step, loaded.path) == (2, 5, 3, str(path))
    assert loaded.run == {"model": "resnet8", "width": 2}
    assert loaded.history == {"epoch": [1, 2], "lr": [0.1, 0.05]}
    assert loaded.tinyres_version == tr.__version__

    model, optimizer, scheduler = trained_parts()
    twin_model, twin_optimizer, twin_scheduler = trained_parts(steps=0)
    twin_model.load_state_dict(loaded.model_state)
    twin_optimizer.load_state_dict(loaded.optimizer_state)
    twin_scheduler.load_state_dict(loaded.scheduler_state)
    # one more identical step on both: the restored optimizer and schedule continue exactly
    for parameters in (model.parameters(), twin_model.parameters()):
        for parameter in parameters:
            parameter.grad = tr.tensor(np.ones(parameter.shape, dtype=np.float32))
    for each_optimizer, each_scheduler in ((optimizer, scheduler),
                                           (twin_optimizer, twin_scheduler)):
        each_optimizer.step()
        each_scheduler.step()
    assert twin_scheduler.get_last_lr() == scheduler.get_last_lr()
    for mine, theirs in zip(model.parameters(), twin_model.parameters()):
        np.testing.assert_array_equal(theirs.numpy(), mine.numpy())


def test_the_file_is_plain_numpy_data_with_json_metadata(tmp_path):
    path = tmp_path / "last.npz"
    save_checkpoint(make_checkpoint(), path)
    with np.load(path, allow_pickle=False) as archive:
        metadata = json.loads(archive["metadata"].tobytes())
        assert "model/conv1.weight" in archive.files
        reference = metadata["optimizer"]["state"]["state"]["0"]["exp_avg"]
        assert archive[f"arrays/{reference['__array__']}"].shape == (2, 1, 3, 3)
    assert metadata["format"] == "tinyres-run" and metadata["format_version"] == FORMAT_VERSION
    assert read_metadata(path) == metadata
    assert tr.load(path)["model"].keys() == models.cifar_resnet(8, 3, 1, 2).state_dict().keys()


def test_generator_states_come_back():
    state = rng_state()
    expected = (random.random(), np.random.random(), default_generator().random())
    random.seed(5), np.random.seed(5), default_generator().random(7)
    restore_rng_state(json.loads(json.dumps({**state, "numpy": {
        **state["numpy"], "state": {**state["numpy"]["state"],
                                    "key": state["numpy"]["state"]["key"].tolist()}}})))
    assert (random.random(), np.random.random(), default_generator().random()) == expected


def rewrite_metadata(source, target, change):
    """Copy a checkpoint, editing its JSON metadata with ``change(metadata)``."""
    entries = tr.load(source)
    metadata = json.loads(entries["metadata"].tobytes())
    change(metadata)
    entries["metadata"] = np.frombuffer(json.dumps(metadata).encode(), dtype=np.uint8)
    tr.save(entries, target)


def test_a_file_of_another_format_version_is_refused_with_both_versions(tmp_path):
    save_checkpoint(make_checkpoint(), tmp_path / "good.npz")
    rewrite_metadata(tmp_path / "good.npz", tmp_path / "future.npz",
                     lambda metadata: metadata.update(format_version=FORMAT_VERSION + 1,
                                                      tinyres_version="9.0.0"))
    for read in (load_checkpoint, read_metadata):
        with pytest.raises(CheckpointError) as caught:
            read(tmp_path / "future.npz")
        message = str(caught.value)
        assert str(tmp_path / "future.npz") in message
        assert f"tinyres 9.0.0 in checkpoint format {FORMAT_VERSION + 1}" in message
        assert f"reads format {FORMAT_VERSION}" in message and "upgrade tinyres" in message


def test_damaged_metadata_and_missing_arrays_are_named(tmp_path):
    save_checkpoint(make_checkpoint(), tmp_path / "good.npz")
    entries = tr.load(tmp_path / "good.npz")
    entries["metadata"] = entries["metadata"][:-20]   # cut JSON
    tr.save(entries, tmp_path / "cut-json.npz")
    with pytest.raises(CheckpointError, match="cut-json.npz.*its metadata is damaged"):
        load_checkpoint(tmp_path / "cut-json.npz")

    entries = tr.load(tmp_path / "good.npz")
    del entries["arrays"]
    tr.save(entries, tmp_path / "no-arrays.npz")
    with pytest.raises(CheckpointError, match=r"no-arrays.npz.*arrays/optimizer\..* is missing"):
        load_checkpoint(tmp_path / "no-arrays.npz")

    (tmp_path / "text.npz").write_text("not a checkpoint")
    for read in (load_checkpoint, read_metadata):
        with pytest.raises(CheckpointError, match="text.npz' is not a readable tinyres checkpoint"):
            read(tmp_path / "text.npz")


def test_weights_alone_are_not_a_run_checkpoint(tmp_path):
    tr.save(models.cifar_resnet(8, width=2).state_dict(), tmp_path / "weights.npz")
    for read in (load_checkpoint, read_metadata):
        with pytest.raises(CheckpointError, match=r"weights.npz' is not a tinyres run checkpoint: "
                                                  r"it holds arrays only"):
            read(tmp_path / "weights.npz")


def test_checkpoint_path_of_a_folder_and_of_a_file(tmp_path):
    save_checkpoint(make_checkpoint(), tmp_path / "last.npz")
    assert checkpoint_path(tmp_path) == str(tmp_path / "last.npz")
    assert checkpoint_path(tmp_path / "last.npz") == str(tmp_path / "last.npz")
    with pytest.raises(FileNotFoundError, match="holds no best.npz"):
        checkpoint_path(tmp_path, "best.npz")
    with pytest.raises(FileNotFoundError, match="no run folder or checkpoint"):
        checkpoint_path(tmp_path / "elsewhere")
