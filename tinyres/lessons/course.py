"""The course folder: what a course needs beyond the package, read by path, never installed.

    course/
      solutions.py      the reference ``*_backward`` functions (``SOLUTIONS``)
      hidden_cases.py   the cases students never see (``HIDDEN_CASES``)

Together with the public part in :mod:`tinyres.lessons.exercises` (forward passes,
public cases, points, hints) and the lesson notebook
``notebooks/04_gradcheck_assignment.ipynb`` this is the one definition of the assignment
from which ``tinyres grade`` and the nbgrader and Otter folders are made.

    course = load_course()                     # the repository's course/ folder
    course.hidden_cases["conv2d"]              # [(description, shapes, settings, seed), ...]
    course.solution_body("relu")               # the lines between def and the end, as text
"""
import ast
import importlib.util
import os
import pathlib
import textwrap
from dataclasses import dataclass

from .exercises import EXERCISES

COURSE_VARIABLE = "TINYRES_COURSE"
LESSON_NAME = "04_gradcheck_assignment.ipynb"
_REPOSITORY = pathlib.Path(__file__).resolve().parents[2]   # a checkout: tinyres/lessons/ -> root


class CourseNotFoundError(FileNotFoundError):
    """No course folder where one was asked for or looked for."""


def find_course(path=None):
    """The course folder: ``path``, else ``$TINYRES_COURSE``, else ``./course``, else the checkout's.

    Returns a ``pathlib.Path``; raises :class:`CourseNotFoundError` saying where it looked.
    """
    candidates = [path] if path is not None else [
        os.environ.get(COURSE_VARIABLE), "course", _REPOSITORY / "course"]
    looked = []
    for candidate in candidates:
        if not candidate:
            continue
        folder = pathlib.Path(candidate).resolve()
        if (folder / "solutions.py").is_file() and (folder / "hidden_cases.py").is_file():
            return folder
        looked.append(str(folder))
    raise CourseNotFoundError(
        "no course folder (one holding solutions.py and hidden_cases.py) at "
        f"{', '.join(looked) or 'the given path'}; pass --course DIR or set {COURSE_VARIABLE}")


def _load_module(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _check_hidden_cases(hidden_cases, path):
    for name, cases in hidden_cases.items():
        if name not in EXERCISES:
            raise ValueError(f"{path}: HIDDEN_CASES has unknown exercise {name!r}; "
                             f"expected one of {sorted(EXERCISES)}")
        for case in cases:
            if len(case) != 4:
                raise ValueError(f"{path}: a hidden case of {name} must be (description, shapes, "
                                 f"settings, seed), got {case!r}")


@dataclass
class Course:
    """A loaded course folder: its hidden cases, its solutions and their source text."""
    folder: pathlib.Path
    hidden_cases: dict        # exercise name -> [(description, shapes, settings, seed), ...]
    solutions: dict           # exercise name -> backward(grad_output, cache)

    @property
    def lesson(self):
        """The lesson notebook the formats are made from: ``notebooks/`` beside the course folder."""
        return self.folder.parent / "notebooks" / LESSON_NAME

    def solution_body(self, name):
        """The body of ``<name>_backward`` in solutions.py without its docstring, dedented."""
        path = self.folder / "solutions.py"
        source = path.read_text()
        for node in ast.parse(source).body:
            if isinstance(node, ast.FunctionDef) and node.name == f"{name}_backward":
                body = node.body[1:] if ast.get_docstring(node) else node.body
                lines = source.splitlines()[body[0].lineno - 1:node.end_lineno]
                return textwrap.dedent("\n".join(lines))
        raise ValueError(f"{path} defines no {name}_backward")

    def cases(self, name):
        """Every case of exercise ``name``: the public ones, then the hidden ones."""
        from .grade import cases_of
        return cases_of(name, self.hidden_cases.get(name, ()))


def load_course(path=None):
    """Load the course folder (see :func:`find_course` for where it is looked for)."""
    folder = find_course(path)
    hidden = _load_module(folder / "hidden_cases.py", "tinyres_course_hidden_cases").HIDDEN_CASES
    _check_hidden_cases(hidden, folder / "hidden_cases.py")
    solutions = _load_module(folder / "solutions.py", "tinyres_course_solutions").SOLUTIONS
    return Course(folder, hidden, solutions)
