"""tinyres.lessons.course: the course folder is read by path and never shipped; the built wheel and
the documentation hold neither the reference solutions nor the hidden cases."""
import importlib
import pathlib
import shutil
import subprocess
import sys
import zipfile

import pytest

import submissions
from tinyres.lessons.course import COURSE_VARIABLE, CourseNotFoundError, find_course, load_course

ROOT = pathlib.Path(__file__).resolve().parents[1]
SOLUTION_LINE = "np.add.at(grad_padded, (n, c, rows, cols), grad_output)"


def test_the_course_folder_has_a_solution_and_hidden_cases_for_every_exercise():
    from tinyres.lessons import EXERCISES

    course = submissions.course()
    assert sorted(course.solutions) == sorted(course.hidden_cases) == sorted(EXERCISES)
    assert all(len(cases) >= 2 for cases in course.hidden_cases.values())
    assert SOLUTION_LINE in course.solution_body("max_pool2d")
    assert not course.solution_body("relu").lstrip().startswith('"""')   # docstring dropped
    public = {case.description for exercise in EXERCISES.values() for case in exercise.cases}
    assert not public & {case[0] for cases in course.hidden_cases.values() for case in cases}


def test_course_is_found_by_argument_variable_and_working_folder(tmp_path, monkeypatch):
    copy = tmp_path / "course"
    shutil.copytree(submissions.COURSE_FOLDER, copy)
    assert find_course(copy) == copy.resolve()
    monkeypatch.setenv(COURSE_VARIABLE, str(copy))
    assert find_course() == copy.resolve()
    monkeypatch.delenv(COURSE_VARIABLE)
    monkeypatch.chdir(tmp_path)
    assert find_course() == copy.resolve()
    with pytest.raises(CourseNotFoundError, match="no course folder"):
        find_course(tmp_path / "elsewhere")


def test_a_malformed_hidden_case_is_explained(tmp_path):
    copy = tmp_path / "course"
    shutil.copytree(submissions.COURSE_FOLDER, copy)
    (copy / "hidden_cases.py").write_text('HIDDEN_CASES = {"softmax": []}\n')
    with pytest.raises(ValueError, match="unknown exercise 'softmax'"):
        load_course(copy)
    (copy / "hidden_cases.py").write_text('HIDDEN_CASES = {"relu": [("x (3, 3)", [(3, 3)])]}\n')
    with pytest.raises(ValueError, match=r"\(description, shapes, settings, seed\)"):
        load_course(copy)


def test_the_package_has_no_solutions_module():
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("tinyres.lessons.solutions")


@pytest.mark.slow
def test_a_built_wheel_holds_neither_solutions_nor_hidden_cases(tmp_path):
    source = tmp_path / "source"          # a copy, so the build leaves the checkout alone
    shutil.copytree(ROOT / "tinyres", source / "tinyres",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation",
                    "--outdir", str(tmp_path / "dist"), str(source)],
                   check=True, capture_output=True, timeout=600)
    [wheel] = (tmp_path / "dist").glob("tinyres-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        text = "\n".join(archive.read(name).decode("utf-8", "replace") for name in names)
    assert "tinyres/lessons/grade.py" in names                     # the grader ships
    assert not any("solutions" in name or "hidden_cases" in name or name.startswith("course/")
                   for name in names)
    assert SOLUTION_LINE not in text
    hidden = [case[0] for cases in submissions.course().hidden_cases.values() for case in cases]
    assert not [description for description in hidden if description in text]


def test_the_documentation_renders_no_solution():
    pages = {path: path.read_text() for path in (ROOT / "docs").rglob("*.md")}
    for path, text in pages.items():
        directives = [line for line in text.splitlines() if line.startswith(":::")]
        shown = [line for line in directives
                 if "solutions" in line or "hidden_cases" in line or line.startswith("::: course")]
        assert not shown, path
        assert SOLUTION_LINE not in text, path
    assert SOLUTION_LINE not in (ROOT / "notebooks" / "04_gradcheck_assignment.ipynb").read_text()
