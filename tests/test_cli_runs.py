"""tinyres/cli_runs.py: train (Ctrl-C, --resume), evaluate and predict, and their errors.

Every run is a ResNet-8 of width 2 on the synthetic data set (410 training images of
1x8x8, 4 classes, in 13 batches of 32), on the numpy backend, so a run of a few epochs
takes about a second.
"""
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import tinyres as tr
from tinyres import data
from tinyres.checkpoint import read_metadata
from tinyres.cli import main
from tinyres.experiments import Recipe, build_loaders
from tinyres.inference import load_trained, predict, prepare_images

TINY_RUN = ["--model", "resnet8", "--width", "2", "--dataset", "synthetic", "--batch-size", "32",
            "--no-progress", "--backend", "numpy"]
INTERNAL_NAMES = ("build_model", "Recipe", "load_dataset", "Traceback", "fit:")


@pytest.fixture(autouse=True)
def restore_backend():
    with tr.use_backend(tr.get_backend()):  # the commands select a backend; undo it after
        yield


def train(out, epochs=2, *extra):
    """``tinyres train`` of the tiny run into ``out``; returns the exit status."""
    return main(["train", *TINY_RUN, "--epochs", str(epochs), "--out", str(out), *extra])


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A tiny run of 2 epochs, trained once for the evaluate and predict tests."""
    out = tmp_path_factory.mktemp("runs") / "finished"
    with tr.use_backend(tr.get_backend()):
        assert train(out) == 0
    return out


def arrays_of(path):
    """Every array of a checkpoint by its full name (the JSON metadata left out)."""
    def walk(entries, prefix):
        for name, value in entries.items():
            if isinstance(value, dict):
                yield from walk(value, f"{prefix}{name}/")
            elif name != "metadata":
                yield prefix + name, value
    return dict(walk(tr.load(path), ""))


def assert_same_run(first, second):
    """Two run folders hold bit-identical checkpoints and the same history (times aside)."""
    first_arrays, second_arrays = arrays_of(first / "last.npz"), arrays_of(second / "last.npz")
    assert first_arrays.keys() == second_arrays.keys()
    for name, array in first_arrays.items():
        np.testing.assert_array_equal(second_arrays[name], array, err_msg=name)
    histories = [json.loads((folder / "history.json").read_text()) for folder in (first, second)]
    for history in histories:
        del history["seconds"]
    assert histories[0] == histories[1]


# ---------------------------------------------------------------------- checked first
@pytest.mark.parametrize("options,message", [
    (["--train-subset", "0"], "--train-subset must be at least 1, got 0"),
    (["--test-subset", "-3"], "--test-subset must be at least 1, got -3"),
    (["--epochs", "0"], "--epochs must be at least 1, got 0"),
    (["--batch-size", "0"], "--batch-size must be at least 1, got 0"),
    (["--lr", "-0.1"], "--lr must be at least 0, got -0.1"),
    (["--lr", "nan"], "--lr must be at least 0, got nan"),
    (["--seed", "-1"], "--seed must be at least 0, got -1"),
    (["--model", "resnet7x"], "--model: unknown model 'resnet7x'; known models: resnet20"),
    (["--model", "resnet50", "--width", "4"], "--width: width applies to the CIFAR networks"),
    (["--width", "0"], "--width must be at least 1 channel, got 0"),
    (["--threads", "0"], "--threads must be >= 1, got 0"),
    (["--dataset", "cifar10"], "cifar10: no root folder was given"),
])
def test_train_options_are_checked_before_the_banner_and_the_data(options, message, tmp_path,
                                                                  capsys, monkeypatch):
    def no_data_load(*args, **kwargs):
        raise AssertionError("the data was loaded before the options were checked")

    monkeypatch.setattr(data, "load_dataset", no_data_load)
    argv = ["train", "--model", "resnet8", "--width", "2", "--dataset", "synthetic",
            "--backend", "numpy", "--out", str(tmp_path / "run"), "--no-progress"]
    assert main(argv + options) == 2
    printed = capsys.readouterr()
    assert message in printed.err
    assert printed.out == ""   # no banner
    assert not any(name in printed.err for name in INTERNAL_NAMES), printed.err


def test_out_that_is_a_file_or_under_one_is_refused(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("a file")
    assert train(tmp_path / "notes.txt") == 2
    assert "is a file; give a folder for the run's files" in capsys.readouterr().err
    assert train(tmp_path / "notes.txt" / "run") == 2
    assert f"{str(tmp_path / 'notes.txt')!r} is a file" in capsys.readouterr().err


def test_out_holding_a_run_points_to_resume(finished_run, capsys):
    assert train(finished_run) == 2
    message = capsys.readouterr().err
    assert "already holds a run (its last.npz holds epoch 2 of 2)" in message
    assert f"tinyres train --resume {finished_run}" in message


def test_resume_takes_everything_from_the_checkpoint(finished_run, capsys):
    assert main(["train", "--resume", str(finished_run), "--lr", "0.5", "--epochs", "9"]) == 2
    assert ("so --epochs, --lr cannot change it; to train differently, start a new run with --out"
            in capsys.readouterr().err)
    assert main(["train", "--resume", str(finished_run)]) == 0
    assert "already finished its 2 epochs; nothing to resume" in capsys.readouterr().out


def test_a_backend_that_cannot_run_here_is_named(finished_run, capsys, monkeypatch):
    from tinyres import backend

    unavailable = backend.why_unavailable
    monkeypatch.setattr(backend, "why_unavailable", lambda name: (
        "no such device here" if name == "numpy" else unavailable(name)))
    assert main(["train", "--resume", str(finished_run)]) == 2   # trained on numpy
    assert ("--backend: this run was trained on the numpy backend, which cannot run here (no "
            "such device here); continue it on another one with --backend numba"
            in capsys.readouterr().err)
    assert main(["evaluate", str(finished_run), "--backend", "numpy"]) == 2
    message = capsys.readouterr().err
    assert "--backend numpy: no such device here" in message and "set_backend" not in message


@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_unreadable_checkpoints_are_named(command, tmp_path, capsys):
    image = tmp_path / "image.npy"
    np.save(image, np.zeros((8, 8), dtype=np.float32))
    images = [str(image)] if command == "predict" else []
    (tmp_path / "text.npz").write_text("epoch 3")
    tr.save(tr.models.cifar_resnet(8, width=2).state_dict(), tmp_path / "weights.npz")
    cases = [(tmp_path / "text.npz", "text.npz' is not a readable tinyres checkpoint: it is a "
                                     "text file"),
             (tmp_path / "weights.npz", "weights.npz' is not a tinyres run checkpoint: it "
                                        "holds arrays only"),
             (tmp_path, "holds no last.npz: it is not a run folder, or the run stopped before"),
             (tmp_path / "nowhere", "no run folder or checkpoint")]
    for path, message in cases:
        assert main([command, str(path), *images, "--backend", "numpy"]) == 2
        printed = capsys.readouterr()
        assert message in printed.err and "Traceback" not in printed.err


# ---------------------------------------------------------------------- evaluate
def test_evaluate_reports_what_training_measured(finished_run, tmp_path, capsys):
    history = json.loads((finished_run / "history.json").read_text())
    assert main(["evaluate", str(finished_run), "--backend", "numpy"]) == 0
    printed = capsys.readouterr().out
    assert f"{finished_run / 'last.npz'}: resnet8 after epoch 2 of 2" in printed
    assert f"test loss {history['test_loss'][-1]:.4f}" in printed
    assert f"accuracy {100 * history['test_accuracy'][-1]:.2f}%" in printed
    rows = [line.split() for line in printed.splitlines() if line.startswith("class_")]
    assert [row[0] for row in rows] == ["class_0", "class_1", "class_2", "class_3"]
    images, correct = sum(int(row[1]) for row in rows), sum(int(row[2]) for row in rows)
    assert correct / images == pytest.approx(history["test_accuracy"][-1])
    for _, count, right, accuracy in rows:
        assert float(accuracy.rstrip("%")) == pytest.approx(100 * int(right) / int(count), abs=0.01)
    picture = finished_run / "confusion-last.png"
    assert picture.read_bytes()[:4] == b"\x89PNG"

    chosen = tmp_path / "matrix.png"
    assert main(["evaluate", str(finished_run / "best.npz"), "--out", str(chosen),
                 "--backend", "numpy"]) == 0
    assert chosen.read_bytes()[:4] == b"\x89PNG" and "best.npz" in capsys.readouterr().out


# ---------------------------------------------------------------------- predict
def test_predict_converts_images_as_training_did(finished_run, tmp_path, capsys):
    _, test_set = data.synthetic()
    image = test_set.images[0]                                     # (1, 8, 8) in [0, 1]
    np.save(tmp_path / "digit.npy", image)
    big = np.kron(image[0], np.ones((4, 4)))                       # the same picture, 32x32
    Image.fromarray((255 * big).round().astype(np.uint8)).convert("RGB").save(tmp_path / "big.png")
    big_jpeg = tmp_path / "big.jpg"
    Image.fromarray((255 * big).round().astype(np.uint8)).save(big_jpeg, quality=95)

    # normalized with the training images' statistics, recomputed here independently
    recipe = Recipe(dataset="synthetic", batch_size=32)
    _, test_loader = build_loaders(recipe)
    trained = load_trained(finished_run)
    np.testing.assert_allclose(prepare_images(trained, [image]), test_loader.transform(image[None]),
                               rtol=1e-6)
    with tr.use_backend("numpy"):
        expected = predict(trained, test_loader.transform(image[None]))[0]

    paths = [str(tmp_path / name) for name in ("digit.npy", "big.png", "big.jpg")]
    assert main(["predict", str(finished_run), *paths, "--top", "2", "--backend", "numpy"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "resnet8 trained on synthetic (epoch 2): 1x8x8 images, 4 classes" in lines[0]
    top_two = ", ".join(f"class_{k} {100 * expected[k]:.1f}%" for k in np.argsort(-expected)[:2])
    assert lines[1] == f"{paths[0]}: {top_two}"
    # the bigger pictures are converted (grey, bilinear resize) before the same network
    assert lines[2].startswith(f"{paths[1]} (3x32x32 -> 1x8x8): class_")
    assert lines[3].startswith(f"{paths[2]} (1x32x32 -> 1x8x8): class_")
    for line in lines[1:]:
        assert line.count("%") == 2


def test_predict_errors_name_the_image_or_the_option(finished_run, tmp_path, capsys):
    (tmp_path / "notes.png").write_text("not a picture")
    for arguments, message in (
            ([str(tmp_path / "missing.png")], "IMAGE: no image file"),
            ([str(tmp_path / "notes.png")], "IMAGE: '" + str(tmp_path / "notes.png")),
            ([str(tmp_path / "notes.png"), "--top", "0"], "--top must be at least 1, got 0")):
        assert main(["predict", str(finished_run), *arguments, "--backend", "numpy"]) == 2
        printed = capsys.readouterr()
        assert message in printed.err and "Traceback" not in printed.err


# ---------------------------------------------------------------------- Ctrl-C
def test_ctrl_c_in_a_child_process_keeps_the_epoch_and_resume_is_bitwise(tmp_path, capsys):
    """SIGINT to a real `tinyres train` process: no traceback, status 130, the epoch kept and
    the resume command printed; the resumed run then ends exactly as an uninterrupted one."""
    stopped, straight, epochs = tmp_path / "stopped", tmp_path / "straight", 4
    child = subprocess.Popen(
        [sys.executable, "-m", "tinyres.cli", "train", *TINY_RUN, "--epochs", str(epochs),
         "--out", str(stopped)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    printed = []
    for line in child.stdout:      # wait until the first epoch is complete, then press Ctrl-C
        printed.append(line)
        if line.startswith("epoch   1/"):
            child.send_signal(signal.SIGINT)
            break
    rest, errors = child.communicate(timeout=120)
    output = "".join(printed) + rest
    assert child.returncode == 130, output + errors
    assert "Traceback" not in errors and "Traceback" not in output, errors
    assert "Ctrl-C: stopping after this batch" in errors
    kept = read_metadata(stopped / "last.npz")["epoch"]
    assert 1 <= kept < epochs
    assert f"{stopped / 'last.npz'} holds epoch {kept} of {epochs}, the last complete one" in output
    assert f"resume with: tinyres train --resume {stopped}" in output

    assert main(["train", "--resume", str(stopped), "--no-progress"]) == 0
    resumed = capsys.readouterr().out
    assert f"after epoch {kept} of {epochs} (numpy backend, seed 0)" in resumed
    assert train(straight, epochs) == 0
    assert_same_run(straight, stopped)


# Each epoch normalizes 13 training batches, then the one test batch.
BATCHES_PER_EPOCH = 13 + 1


def press_ctrl_c_during(monkeypatch, call, times):
    """Make the ``call``-th normalization of a batch press Ctrl-C ``times`` times.

    Python runs the handler of one press before the next line, so two presses are two.
    """
    calls = []
    normalize = data.Normalize.__call__

    def pressing(self, images, rng=None):
        calls.append(1)
        if len(calls) == call:
            for _ in range(times):
                os.kill(os.getpid(), signal.SIGINT)
        return normalize(self, images, rng)

    monkeypatch.setattr(data.Normalize, "__call__", pressing)


def test_a_second_ctrl_c_stops_at_once(tmp_path, capsys, monkeypatch):
    press_ctrl_c_during(monkeypatch, call=BATCHES_PER_EPOCH + 3, times=2)   # epoch 2, batch 3
    assert train(tmp_path / "run", 4) == 130
    printed = capsys.readouterr().out
    assert "training stopped by Ctrl-C at once; the epoch in progress is dropped" in printed
    assert "holds epoch 1 of 4" in printed
    assert read_metadata(tmp_path / "run" / "last.npz")["epoch"] == 1


def test_ctrl_c_before_the_first_epoch_ends_says_nothing_was_kept(tmp_path, capsys, monkeypatch):
    press_ctrl_c_during(monkeypatch, call=2, times=1)
    assert train(tmp_path / "run", 2) == 130
    printed = capsys.readouterr().out
    assert "No epoch had completed, so nothing was saved to resume." in printed
    assert not (tmp_path / "run" / "last.npz").exists()
