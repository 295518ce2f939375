"""The assignment under Otter-Grader, end to end: ``tinyres assignment otter``, then Otter's own
``otter assign`` and ``otter run`` on three students' notebooks, offline."""
import json
import os
import pathlib
import subprocess
import sys
import zipfile

import pytest
import yaml

import submissions
from tinyres.cli import main
from tinyres.lessons.assignment_otter import master_notebook
from tinyres.lessons.exercises import EXERCISES

VENV_BIN = pathlib.Path(sys.executable).parent    # otter, and the python its kernel runs
# Each question is graded on its own, so one notebook can hold several wrong answers:
# the pool bug must cost max pooling its points, the fakes theirs, and nothing else.
STUDENTS = {
    "stub": {},
    "reference": "reference",
    "pool_bug_and_faker": {"max_pool2d": submissions.MAX_POOL_REPEATED_INDEX,
                           "relu": submissions.RELU_BY_TINYRES,
                           "batch_norm": submissions.BATCH_NORM_BY_KERNEL},
}


def _environment():
    return dict(os.environ, PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")


def _otter(folder, *arguments):
    """Run ``otter`` in ``folder``; returns the finished process (asserting it succeeded)."""
    completed = subprocess.run([str(VENV_BIN / "otter"), *arguments], cwd=folder,
                               env=_environment(), capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return completed


def _blocks(notebook):
    """The master's raw cells as (first line, YAML config) pairs, in order."""
    return [(cell.source.splitlines()[0], yaml.safe_load(cell.source) or {})
            for cell in notebook.cells if cell.cell_type == "raw"]


def _test_config(source):
    """The YAML between a test cell's BEGIN and END TEST CONFIG lines."""
    lines = source.splitlines()
    assert lines[0] == '""" # BEGIN TEST CONFIG', source
    return yaml.safe_load("\n".join(lines[1:lines.index('""" # END TEST CONFIG')]))


def test_master_notebook_has_config_questions_and_a_test_per_case():
    notebook = master_notebook(submissions.course())
    blocks = _blocks(notebook)
    first_line, config = blocks[0]
    assert first_line == "# ASSIGNMENT CONFIG" and notebook.cells[0].cell_type == "raw"
    assert config["name"] == "gradcheck" and config["requirements"] == ["tinyres"]
    assert config["tests"] == {"files": False, "ok_format": False}
    assert config["generate"]["pdf"] is False and config["export_cell"] is False
    assert config["run_tests"] is True
    questions = [block for line, block in blocks if line == "# BEGIN QUESTION"]
    assert [(q["name"], q["points"]) for q in questions] == [
        (name, exercise.points) for name, exercise in EXERCISES.items()]
    tests = [cell.source for cell in notebook.cells
             if cell.cell_type == "code" and cell.source.startswith('""" # BEGIN TEST CONFIG')]
    course = submissions.course()
    assert len(tests) == sum(len(course.cases(name)) for name in EXERCISES)   # one per case
    for name in EXERCISES:
        configs = [_test_config(source) or {} for source in tests if f"def test_{name}_" in source]
        assert [bool(config.get("hidden")) for config in configs] == [
            case.hidden for case in course.cases(name)]
        assert not any("points" in config for config in configs)   # Otter shares them equally
    # the lesson's score cell sums the grading cells' results, which the tests replace
    assert not any("results.items()" in cell.source for cell in notebook.cells)


@pytest.fixture(scope="module")
def assigned(tmp_path_factory):
    """``tinyres assignment otter``, then ``otter assign``; returns the output folder ``dist``."""
    folder = tmp_path_factory.mktemp("otter")
    assert main(["assignment", "otter", str(folder / "master")]) == 0
    _otter(folder, "assign", "master/gradcheck.ipynb", "dist")   # grades the solutions: 9 / 9
    return folder / "dist"


def _autograder_zip(dist):
    zips = sorted((dist / "autograder").glob("gradcheck-autograder_*.zip"))
    assert len(zips) == 1, zips
    return zips[0]


@pytest.mark.slow
def test_student_notebook_has_stubs_and_no_solution_or_hidden_case(assigned):
    student = (assigned / "student" / "gradcheck.ipynb").read_text()
    master = (assigned.parent / "master" / "gradcheck.ipynb").read_text()
    assert student.count("raise NotImplementedError") == 4
    for marker in ("BEGIN SOLUTION", "BEGIN PROMPT", "hidden_cases", "hidden=True"):
        assert marker not in student
    assert "np.add.at(grad_padded" not in student and "np.add.at(grad_padded" in master
    for cases in submissions.course().hidden_cases.values():
        for description, *_ in cases:
            assert description not in student and description in master
    assert not (assigned / "student" / "tests").exists()     # public tests sit in the metadata


@pytest.mark.slow
def test_autograder_zip_has_hidden_tests_and_tinyres(assigned):
    with zipfile.ZipFile(_autograder_zip(assigned)) as archive:
        names = set(archive.namelist())
        assert {f"tests/{name}.py" for name in EXERCISES} <= names
        assert all("hidden=True" in archive.read(f"tests/{name}.py").decode() for name in EXERCISES)
        assert "- tinyres" in archive.read("environment.yml").decode()
        assert json.loads(archive.read("otter_config.json"))["assignment_name"] == "gradcheck"


@pytest.fixture(scope="module")
def graded(assigned, tmp_path_factory):
    """Each student's Otter results: {student: {question: test entry of results.json}}.

    The ``otter run`` processes run side by side: each spends most of its time starting
    Python, Otter and a kernel, not grading.
    """
    folder = tmp_path_factory.mktemp("submissions")
    released = assigned / "student" / "gradcheck.ipynb"
    reference = submissions.reference_bodies()
    runs = {}
    for student, answers in STUDENTS.items():
        bodies = reference if answers == "reference" else dict(reference, **answers) if answers else {}
        notebook = submissions.write_notebook(released, folder / student / "gradcheck.ipynb", bodies)
        runs[student] = subprocess.Popen(
            [str(VENV_BIN / "otter"), "run", "--no-logo", "-a", str(_autograder_zip(assigned)),
             "-o", str(notebook.parent), str(notebook)],
            cwd=notebook.parent, env=_environment(), stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True)
    results = {}
    for student, run in runs.items():
        output, _ = run.communicate(timeout=600)
        assert run.returncode == 0, output
        with open(folder / student / "results.json") as file:
            tests = json.load(file)["tests"]
        results[student] = {test["name"]: test for test in tests}
    return results


def _scores(results):
    return {name: results[name]["score"] for name in EXERCISES}


@pytest.mark.slow
def test_stub_scores_zero_and_reference_full_marks(graded):
    assert _scores(graded["stub"]) == {name: 0 for name in EXERCISES}
    assert "not implemented yet" in graded["stub"]["relu"]["output"]
    assert _scores(graded["reference"]) == {name: exercise.points
                                            for name, exercise in EXERCISES.items()}
    assert all(graded["reference"][name]["max_score"] == exercise.points
               for name, exercise in EXERCISES.items())


@pytest.mark.slow
def test_pool_bug_and_faked_answers_lose_only_their_points(graded):
    results = graded["pool_bug_and_faker"]
    scores = _scores(results)
    assert 0 < sum(scores.values()) < 9
    assert scores["max_pool2d"] == pytest.approx(2 * 1 / 5)  # 1 of its 5 cases, as tinyres says
    assert scores["conv2d"] == 3
    pool = results["max_pool2d"]["output"]
    assert "WRONG" in pool and "np.add.at" in pool          # tinyres's report and its hint
    for name in ("relu", "batch_norm"):
        assert scores[name] == 0
        assert "not allowed" in results[name]["output"]


@pytest.mark.slow
def test_public_summary_shows_the_report_but_no_hidden_case(graded):
    public = graded["pool_bug_and_faker"]["Public Tests"]
    assert public["visibility"] == "visible"
    assert "FAIL  max_pool2d" in public["output"] and "(hidden)" not in public["output"]
    assert graded["pool_bug_and_faker"]["max_pool2d"]["visibility"] == "after_published"
