"""``tinyres grade``: a blank submission scores 0, the reference 9/9, a bug partial credit, an answer
tinyres computed 0 with "not allowed"; Gradescope's results.json; the time limit; bad input."""
import json

import nbformat
import pytest

import submissions
from tinyres.cli import main
from tinyres.lessons import EXERCISES
from tinyres.lessons.course import COURSE_VARIABLE

LESSON = submissions.COURSE_FOLDER.parent / "notebooks" / "04_gradcheck_assignment.ipynb"
TEST_KEYS = {"name", "score", "max_score", "output", "visibility"}


def _grade(capsys, path, *options):
    status = main(["grade", str(path), "--course", str(submissions.COURSE_FOLDER), *options])
    return status, capsys.readouterr()


def _results(tmp_path, capsys, submission, *options):
    results = tmp_path / "results.json"
    status, printed = _grade(capsys, submission, "--results", str(results), *options)
    assert status == 0, printed.err
    return json.loads(results.read_text()), printed.out


@pytest.fixture(scope="module")
def course():
    return submissions.course()


def _case_count(course):
    return {name: len(exercise.cases) + len(course.hidden_cases[name])
            for name, exercise in EXERCISES.items()}


def test_reference_notebook_scores_nine_with_gradescope_schema(tmp_path, capsys, course):
    notebook = submissions.write_notebook(LESSON, tmp_path / "reference.ipynb",
                                          submissions.reference_bodies())
    results, out = _results(tmp_path, capsys, notebook)
    assert results["score"] == pytest.approx(9)
    assert "total: 9.00 / 9 points" in out
    tests = results["tests"]
    assert len(tests) == sum(_case_count(course).values())
    for test in tests:
        assert set(test) == TEST_KEYS
        assert test["name"].split(":")[0] in EXERCISES
        assert test["score"] == test["max_score"] > 0
    assert "max_pool2d: x (1, 2, 7, 7), k 3, stride 2, pad 1" in [test["name"] for test in tests]
    hidden = [test for test in tests if test["visibility"] == "after_published"]
    assert len(hidden) == sum(len(cases) for cases in course.hidden_cases.values())
    assert {test["visibility"] for test in tests} == {"visible", "after_published"}
    for name, exercise in EXERCISES.items():
        share = sum(test["max_score"] for test in tests if test["name"].startswith(name + ":"))
        assert share == pytest.approx(exercise.points)


def test_blank_notebook_scores_zero(tmp_path, capsys):
    results, out = _results(tmp_path, capsys, LESSON)
    assert results["score"] == 0
    assert out.count("not implemented yet") == 4
    assert all(test["score"] == 0 for test in results["tests"])


def test_pool_bug_earns_partial_credit_and_its_hint(tmp_path, capsys, course):
    bodies = dict(submissions.reference_bodies(), max_pool2d=submissions.MAX_POOL_REPEATED_INDEX)
    results, out = _results(tmp_path, capsys, submissions.as_module(tmp_path / "bug.py", bodies))
    pool = [test for test in results["tests"] if test["name"].startswith("max_pool2d:")]
    earned = sum(test["score"] for test in pool)
    assert 0 < earned < 2
    assert results["score"] == pytest.approx(7 + earned)
    assert any("np.add.at" in test["output"] and test["visibility"] == "after_published"
               for test in pool)


def test_answers_computed_by_tinyres_score_zero_not_allowed(tmp_path, capsys):
    bodies = dict(submissions.reference_bodies(), relu=submissions.RELU_BY_TINYRES,
                  batch_norm=submissions.BATCH_NORM_BY_KERNEL)
    results, out = _results(tmp_path, capsys, submissions.as_module(tmp_path / "fake.py", bodies))
    assert results["score"] == pytest.approx(9 - 1 - 3)
    faked = [test for test in results["tests"] if test["name"].split(":")[0] in ("relu", "batch_norm")]
    assert all(test["score"] == 0 and "not allowed" in test["output"] for test in faked)


def test_time_limit_costs_one_exercise_and_the_others_are_graded(tmp_path, capsys):
    bodies = dict(submissions.reference_bodies(), conv2d="while True:\n    pass")
    results, out = _results(tmp_path, capsys, submissions.as_module(tmp_path / "loop.py", bodies),
                            "--timeout", "3")
    assert results["score"] == pytest.approx(9 - 3)
    assert "stopped after 3 s" in out
    conv = [test for test in results["tests"] if test["name"].startswith("conv2d:")]
    assert all(test["score"] == 0 and "stopped after 3 s" in test["output"] for test in conv)


def test_public_only_needs_no_course_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(COURSE_VARIABLE, str(tmp_path / "nowhere"))
    path = submissions.as_module(tmp_path / "ref.py", submissions.reference_bodies())
    assert main(["grade", str(path), "--public-only", "--results", "r.json"]) == 0
    results = json.loads((tmp_path / "r.json").read_text())
    assert results["score"] == pytest.approx(9)
    assert {test["visibility"] for test in results["tests"]} == {"visible"}
    assert "public cases only" in capsys.readouterr().out


@pytest.mark.parametrize("name, content, message", [
    ("missing.py", None, "no such file"),
    ("answers.txt", "x = 1", "expected a .py file or an .ipynb notebook"),
    ("broken.ipynb", "{not json", "not a Jupyter notebook"),
])
def test_unreadable_submission_exits_non_zero_with_a_message(tmp_path, capsys, name, content,
                                                             message):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    status, printed = _grade(capsys, path)
    assert status == 2 and message in printed.err


def test_missing_course_folder_and_bad_limits_are_explained(tmp_path, capsys):
    path = submissions.as_module(tmp_path / "ref.py", submissions.reference_bodies())
    assert main(["grade", str(path), "--course", str(tmp_path)]) == 2
    assert "no course folder" in capsys.readouterr().err
    status, printed = _grade(capsys, path, "--timeout", "0")
    assert status == 2 and "--timeout must be > 0" in printed.err


def test_a_syntax_error_is_graded_zero_not_a_crash(tmp_path, capsys):
    path = tmp_path / "typo.py"
    path.write_text("def relu_backward(grad_output, cache)\n    return grad_output\n")
    results, out = _results(tmp_path, capsys, path)
    assert results["score"] == 0 and "SyntaxError" in out


def test_notebook_grading_ignores_demo_and_grading_cells(tmp_path, capsys):
    notebook = nbformat.read(str(LESSON), as_version=4)
    submissions.filled_in(notebook, submissions.reference_bodies())
    notebook.cells.append(nbformat.v4.new_code_cell("raise SystemExit('a demo cell')\n%timeit 1"))
    path = tmp_path / "extra.ipynb"
    nbformat.write(notebook, str(path))
    results, _ = _results(tmp_path, capsys, path)
    assert results["score"] == pytest.approx(9)
