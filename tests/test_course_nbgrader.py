"""The assignment under nbgrader, end to end: ``tinyres assignment nbgrader``, then nbgrader's own
``generate_assignment``, ``autograde`` and ``export`` on four students' notebooks."""
import csv
import json
import os
import pathlib
import subprocess
import sys

import nbformat
import pytest

import submissions
from tinyres.cli import main
from tinyres.lessons.assignment_nbgrader import source_notebook

VENV_BIN = pathlib.Path(sys.executable).parent    # nbgrader runs alembic from here
STUDENTS = {
    "stub": {},
    "reference": "reference",
    "pool_bug": {"max_pool2d": submissions.MAX_POOL_REPEATED_INDEX},
    "faker": {"relu": submissions.RELU_BY_TINYRES, "batch_norm": submissions.BATCH_NORM_BY_KERNEL},
}


def _nbgrader(course_dir, *arguments):
    environment = dict(os.environ, PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    completed = subprocess.run([str(VENV_BIN / "nbgrader"), *arguments], cwd=course_dir,
                               env=environment, capture_output=True, text=True, timeout=900)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return completed


def test_source_notebook_marks_solutions_tests_and_points():
    notebook = source_notebook(submissions.course())
    graded = [cell for cell in notebook.cells if cell.metadata.get("nbgrader", {}).get("grade")]
    assert [cell.metadata.nbgrader.points for cell in graded] == [1, 2, 3, 3]
    assert all("### BEGIN HIDDEN TESTS" in cell.source and cell.metadata.nbgrader.locked
               for cell in graded)
    solutions = [cell for cell in notebook.cells if cell.metadata.get("nbgrader", {}).get("solution")]
    assert len(solutions) == 4
    assert all("### BEGIN SOLUTION" in cell.source and "raise NotImplementedError" not in cell.source
               for cell in solutions)
    grade_ids = [cell.metadata.nbgrader.grade_id for cell in graded + solutions]
    assert len(set(grade_ids)) == len(grade_ids)


@pytest.fixture(scope="module")
def graded_course(tmp_path_factory):
    """Generate, release, submit, autograde and export; returns (course folder, grades)."""
    folder = tmp_path_factory.mktemp("nbgrader")
    assert main(["assignment", "nbgrader", str(folder)]) == 0
    _nbgrader(folder, "generate_assignment", "gradcheck")
    released = folder / "release" / "gradcheck" / "gradcheck.ipynb"
    reference = submissions.reference_bodies()
    for student, answers in STUDENTS.items():
        bodies = reference if answers == "reference" else dict(reference, **answers) if answers else {}
        submissions.write_notebook(released, folder / "submitted" / student / "gradcheck" /
                                   "gradcheck.ipynb", bodies)
    _nbgrader(folder, "autograde", "gradcheck")
    _nbgrader(folder, "export")
    with open(folder / "grades.csv") as file:
        grades = {row["student_id"]: float(row["score"]) for row in csv.DictReader(file)}
    return folder, grades


@pytest.mark.slow
def test_released_notebook_has_stubs_and_no_hidden_cases(graded_course):
    folder, _ = graded_course
    released = (folder / "release" / "gradcheck" / "gradcheck.ipynb").read_text()
    assert "BEGIN HIDDEN TESTS" not in released and "BEGIN SOLUTION" not in released
    assert "np.add.at(grad_padded" not in released          # the max-pool answer
    hidden = submissions.course().hidden_cases["conv2d"][0][0]
    assert hidden not in released and hidden in (folder / "source" / "gradcheck" /
                                                 "gradcheck.ipynb").read_text()
    assert released.count("raise NotImplementedError") == 4


@pytest.mark.slow
def test_blank_scores_zero_reference_full_marks_bug_partial(graded_course):
    _, grades = graded_course
    assert grades["stub"] == 0
    assert grades["reference"] == 9
    assert 7 <= grades["pool_bug"] < 9                      # every exercise but max pooling
    assert grades["faker"] == 9 - 1 - 3                     # relu and batch norm lost


def _autograded_outputs(folder, student):
    notebook = nbformat.read(str(folder / "autograded" / student / "gradcheck" / "gradcheck.ipynb"),
                             as_version=4)
    return {cell.metadata.nbgrader.grade_id: json.dumps(cell.outputs)
            for cell in notebook.cells if cell.metadata.get("nbgrader", {}).get("grade")}


@pytest.mark.slow
def test_feedback_says_not_allowed_and_shows_the_hint(graded_course):
    folder, _ = graded_course
    faker = _autograded_outputs(folder, "faker")
    assert "not allowed inside an answer" in faker["test_relu"]
    assert "numpy_kernels.batch_norm_backward is not allowed" in faker["test_batch_norm"]
    pool = _autograded_outputs(folder, "pool_bug")["test_max_pool2d"]
    assert "(hidden)" in pool and "np.add.at" in pool       # the hint under the failing case
