"""tinyres.lessons.sandbox: what is read from a submission, and how an answer that misbehaves in its
child process is reported (time limit, exit, crash, memory) without stopping the grader."""
import json

import pytest

from tinyres.lessons.sandbox import SubmissionError, submission_source
from tinyres.lessons.submission import grade_exercise

RIGHT_RELU = "def relu_backward(grad_output, cache):\n    return grad_output * (cache['x'] > 0)\n"


def _notebook(path, *sources):
    cells = [{"cell_type": "code", "source": source, "metadata": {}, "outputs": [],
              "execution_count": None} for source in sources]
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4,
                                "nbformat_minor": 5}))
    return path


def test_a_notebook_gives_its_imports_definitions_and_constants_only(tmp_path):
    path = _notebook(tmp_path / "hw.ipynb",
                     "import numpy as np\n%matplotlib inline\nSCALE = 2.0\nresults = grade(x)",
                     ["def relu_backward(grad_output, cache):\n", "    return grad_output\n"],
                     "print('a demo')\nrelu_backward(1, 2)")
    source = submission_source(path)
    assert "import numpy as np" in source and "SCALE = 2.0" in source
    assert "def relu_backward" in source
    assert "grade(" not in source and "print" not in source and "%matplotlib" not in source


def test_a_cell_that_does_not_parse_is_kept_so_its_error_is_reported(tmp_path):
    path = _notebook(tmp_path / "hw.ipynb", "def relu_backward(grad_output, cache)\n    pass")
    assert "def relu_backward(grad_output, cache)" in submission_source(path)


def test_a_python_file_is_taken_whole(tmp_path):
    path = tmp_path / "hw.py"
    path.write_text(RIGHT_RELU + "print('graded')\n")
    assert submission_source(path) == path.read_text()


@pytest.mark.parametrize("name, content", [("hw.txt", "x"), ("hw.ipynb", "[]"), ("none.py", None)])
def test_unreadable_submissions_raise_submission_error(tmp_path, name, content):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(SubmissionError, match=str(path)):
        submission_source(path)


@pytest.mark.parametrize("body, message", [
    ("while True:\n        pass", "stopped after 2 s: the answer did not return in time"),
    ("import sys\n    sys.exit(3)", "ended its process (exit status 3)"),
    ("import os\n    os._exit(0)", "ended its process (exit status 0)"),
    ("import ctypes\n    ctypes.string_at(0)", "killed by signal 11"),
])
def test_an_answer_that_never_returns_loses_the_exercise_with_a_reason(body, message):
    source = f"def relu_backward(grad_output, cache):\n    {body}\n"
    result = grade_exercise(source, "relu", timeout=2)
    assert result.score == 0 and message in result.message
    assert all(message in case.message for case in result.cases)
    assert message in str(result)


def test_running_out_of_memory_is_reported_per_case():
    source = ("def relu_backward(grad_output, cache):\n"
              "    blocks = []\n"
              "    while True:\n"
              "        blocks.append(bytearray(10 ** 8))\n")
    result = grade_exercise(source, "relu", timeout=30, memory_mb=300)
    assert result.score == 0
    assert all("ran out of memory" in case.message for case in result.cases)


def test_a_missing_function_and_a_failing_import_are_explained():
    assert "defines no function conv2d_backward" in grade_exercise(RIGHT_RELU, "conv2d").message
    result = grade_exercise("import no_such_module\n" + RIGHT_RELU, "relu")
    assert "failed to load: ModuleNotFoundError" in result.message


def test_code_after_the_definitions_that_fails_does_not_cost_the_answer():
    result = grade_exercise(RIGHT_RELU + "raise SystemExit('the end of a script')\n", "relu")
    assert result.passed and result.score == 1


def test_the_students_prints_stay_out_of_the_report():
    source = RIGHT_RELU.replace("    return", "    print('debugging')\n    return")
    result = grade_exercise(source, "relu")
    assert result.passed and "debugging" not in str(result)
