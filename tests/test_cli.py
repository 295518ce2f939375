"""The ``tinyres`` command, called in-process through ``main(argv)``.

The commands that work with runs (train's resume and Ctrl-C, evaluate, predict) are tested
in test_cli_runs.py.
"""
import json

import pytest

import tinyres as tr
from tinyres.cli import main
from tinyres.experiments import MODEL_NAMES

TINY = ["--width", "2", "--backend", "numpy"]


@pytest.fixture(autouse=True)
def restore_backend():
    with tr.use_backend(tr.get_backend()):  # the commands select a backend; undo it after
        yield


@pytest.mark.parametrize("argv", [[], ["train"], ["evaluate"], ["predict"], ["summary"],
                                  ["gradcheck"], ["experiment"], ["experiment", "degradation"]],
                         ids=" ".join)
def test_help(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv + ["--help"])
    assert exit_info.value.code == 0
    assert "usage: tinyres" in capsys.readouterr().out


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "train" in capsys.readouterr().out


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"tinyres {tr.__version__}"


def test_train_help_lists_every_model(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())   # argparse wraps the help text
    for name in MODEL_NAMES:
        assert name in text, name
    assert "..." not in text


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


def test_summary_with_a_given_input(capsys):
    assert main(["summary", "resnet20", "--input-shape", "1,28,28"]) == 0
    printed = capsys.readouterr().out
    assert "input 1x28x28 with 10 classes" in printed and "changed by --input-shape" in printed
    assert "summary for input (1, 1, 28, 28)" in printed


def test_summary_of_an_imagenet_network_uses_its_natural_input(capsys):
    """The paper's ResNet-50: 25.6 M parameters and 4.1 G multiply-adds at 224x224."""
    assert main(["summary", "resnet50"]) == 0
    printed = capsys.readouterr().out
    assert "input 3x224x224 with 1,000 classes: the natural input of the ImageNet" in printed
    assert "Total params:     25,557,032" in printed and "= 4.09 G per sample" in printed


def test_summary_of_a_cifar_network_says_what_train_builds(capsys):
    assert main(["summary", "resnet20"]) == 0
    printed = capsys.readouterr().out
    assert "input 3x32x32 with 10 classes: the natural input of the CIFAR-10" in printed
    assert "1x28x28 for mnist5k" in printed
    assert "Total params:     269,722" in printed
    assert main(["summary", "resnet20", "--dataset", "mnist5k"]) == 0
    printed = capsys.readouterr().out
    assert "input 1x28x28 with 10 classes: the mnist5k images" in printed
    one_channel = 269_722 - 16 * 2 * 3 * 3   # conv1's 16 3x3 filters see 1 channel, not 3
    assert f"Total params:     {one_channel:,}" in printed


@pytest.mark.parametrize("argv,message", [
    (["summary", "resnet7x"], "MODEL: unknown model 'resnet7x'; known models: resnet20,"),
    (["summary", "resnet50", "--width", "4"], "MODEL: width applies to the CIFAR networks"),
    (["summary", "resnet21"], "MODEL: 'resnet21': a CIFAR network has 6n + 2 layers"),
    (["summary", "resnet20", "--num-classes", "0"], "--num-classes must be at least 1, got 0"),
    (["gradcheck", "plain7"], "MODEL: 'plain7': a CIFAR network has 6n + 2 layers"),
    (["experiment", "degradation", "--depths", "9", "--no-progress"],
     "--depths: a CIFAR network has 6n + 2 layers (8, 14, 20, ...), got 9"),
    (["experiment", "degradation", "--epochs", "0", "--no-progress"],
     "--epochs must be at least 1, got 0"),
])
def test_usage_errors_name_the_argument(argv, message, capsys):
    assert main(argv) == 2
    printed = capsys.readouterr()
    assert message in printed.err and not printed.out


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
