"""The ``tinyres`` command, called in-process through ``main(argv)``."""
import json

import pytest

import tinyres as tr
from tinyres.cli import main

TINY = ["--width", "2", "--backend", "numpy"]


@pytest.fixture(autouse=True)
def restore_backend():
    with tr.use_backend(tr.get_backend()):  # the commands select a backend; undo it after
        yield


@pytest.mark.parametrize("argv", [[], ["train"], ["summary"], ["gradcheck"], ["experiment"],
                                  ["experiment", "degradation"]], ids=" ".join)
def test_help(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv + ["--help"])
    assert exit_info.value.code == 0
    assert "usage: tinyres" in capsys.readouterr().out


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "train" in capsys.readouterr().out


def test_train_end_to_end(tmp_path, capsys):
    out = tmp_path / "run"
    status = main(["train", "--model", "resnet8", *TINY, "--dataset", "synthetic",
                   "--epochs", "1", "--batch-size", "64", "--out", str(out), "--no-progress"])
    printed = capsys.readouterr().out
    assert status == 0, printed
    assert "final test accuracy" in printed and str(out) in printed
    history = json.loads((out / "history.json").read_text())
    assert history["epoch"] == [1]
    config = json.loads((out / "config.json").read_text())
    assert config["model"] == "resnet8" and config["backend"] == "numpy"
    for name in ("history.csv", "curves.png", "best.npz", "last.npz"):
        assert (out / name).exists()


def test_unknown_model_is_a_usage_error(tmp_path, capsys):
    status = main(["train", "--model", "resnet7x", "--dataset", "synthetic", "--epochs", "1",
                   "--out", str(tmp_path), "--no-progress", "--backend", "numpy"])
    assert status == 2
    assert "unknown model" in capsys.readouterr().err


def test_summary(capsys):
    assert main(["summary", "resnet20", "--input-shape", "1,28,28"]) == 0
    assert capsys.readouterr().out.strip()


def test_gradcheck_of_a_whole_network(capsys):
    status = main(["gradcheck", "resnet8", *TINY, "--input-shape", "1,6,6", "--directions", "1"])
    printed = capsys.readouterr().out
    assert status == 0, printed
    assert "passed" in printed


def test_degradation_experiment(tmp_path, capsys):
    status = main(["experiment", "degradation", "--depths", "8", "14", *TINY,
                   "--dataset", "synthetic", "--epochs", "1", "--out", str(tmp_path),
                   "--no-progress"])
    assert status == 0, capsys.readouterr().out
    summary = json.loads((tmp_path / "degradation.json").read_text())
    assert set(summary["results"]) == {"plain-8", "plain-14", "resnet-8", "resnet-14"}
    assert (tmp_path / "degradation.png").read_bytes()[:4] == b"\x89PNG"


def test_train_threads_option_sets_the_thread_count(tmp_path, capsys, threads):
    status = main(["train", "--model", "resnet8", *TINY, "--dataset", "synthetic", "--epochs", "1",
                   "--threads", "1", "--out", str(tmp_path), "--no-progress"])
    assert status == 0, capsys.readouterr().out
    assert tr.get_num_threads() == 1


def test_train_refuses_zero_threads(tmp_path, capsys, threads):
    status = main(["train", "--model", "resnet8", *TINY, "--dataset", "synthetic", "--epochs", "1",
                   "--threads", "0", "--out", str(tmp_path), "--no-progress"])
    assert status == 2
    assert "--threads must be >= 1, got 0" in capsys.readouterr().err
