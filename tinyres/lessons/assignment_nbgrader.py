"""The assignment as an nbgrader course folder (``tinyres assignment nbgrader DIR``).

    DIR/nbgrader_config.py
    DIR/source/gradcheck/gradcheck.ipynb

The source notebook is the lesson with nbgrader's markup:

* each exercise cell is a solution cell, the reference answer between
  ``### BEGIN SOLUTION`` and ``### END SOLUTION`` (``nbgrader generate_assignment`` puts
  the lesson's stub back in its place);
* each grading cell is a locked, autograded test cell worth the exercise's points, whose
  ``### BEGIN HIDDEN TESTS`` block adds the hidden cases.  The cell raises with the
  report when no case passes; otherwise it ends on the points earned, which nbgrader
  takes as partial credit.

Then, from DIR, with the virtualenv's ``bin/`` on ``PATH`` (nbgrader calls ``alembic``):
``nbgrader generate_assignment gradcheck``, ``nbgrader autograde gradcheck``,
``nbgrader export``.
"""
import pathlib

import nbformat

from .assignment_notebook import (EXERCISE_TAG, GRADE_TAG, STUB_LINES, cases_literal,
                                  clear_outputs, read_lesson, tagged_cells, with_solution)
from .exercises import EXERCISES

ASSIGNMENT = "gradcheck"
SCHEMA_VERSION = 3

CONFIG = f'''"""nbgrader's configuration of the tinyres gradient-check course, written by tinyres."""
c = get_config()  # noqa: F821 -- nbgrader defines it

c.CourseDirectory.course_id = "tinyres-gradcheck"
# the stub students receive, as the lesson notebook has it
c.ClearSolutions.code_stub = {{"python": "{STUB_LINES[0]}\\n{STUB_LINES[1]}"}}
# the four exercises and their hidden cases take a few seconds; a wrong answer may take longer
c.ExecutePreprocessor.timeout = 600
'''


def _metadata(grade_id, solution, grade, points=None):
    metadata = {"grade": grade, "grade_id": grade_id, "locked": not solution,
                "schema_version": SCHEMA_VERSION, "solution": solution, "task": False}
    if points is not None:
        metadata["points"] = points
    return metadata


def test_cell_source(name, hidden_cases):
    """The autograded cell of exercise ``name``: public cases, hidden ones, partial credit."""
    return "\n".join([
        "from tinyres.lessons import grade   # the grader itself, whatever the notebook defined",
        "hidden_cases = []",
        "### BEGIN HIDDEN TESTS",
        f"hidden_cases = {cases_literal(hidden_cases)}",
        "### END HIDDEN TESTS",
        f'results["{name}"] = grade("{name}", {name}_backward, hidden_cases=hidden_cases, '
        "verbose=False)",
        f'results["{name}"].assert_passed(partial_credit=True)',
    ])


def source_notebook(course):
    """The nbgrader source notebook made from the lesson and ``course``."""
    notebook = clear_outputs(read_lesson(course))
    exercise_cells = tagged_cells(notebook, EXERCISE_TAG)
    grade_cells = tagged_cells(notebook, GRADE_TAG)
    for name, exercise in EXERCISES.items():
        cell = exercise_cells[name]
        cell.source = with_solution(cell.source, course.solution_body(name),
                                    "### BEGIN SOLUTION", "### END SOLUTION")
        cell.metadata["nbgrader"] = _metadata(f"{name}_backward", solution=True, grade=False)
        cell = grade_cells[name]
        cell.source = test_cell_source(name, course.hidden_cases.get(name, ()))
        cell.metadata["nbgrader"] = _metadata(f"test_{name}", solution=False, grade=True,
                                              points=exercise.points)
    return notebook


def write_nbgrader_course(course, folder):
    """Write ``folder/nbgrader_config.py`` and the source notebook; returns the paths written."""
    folder = pathlib.Path(folder)
    notebook_path = folder / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    notebook_path.parent.mkdir(parents=True, exist_ok=True)
    config_path = folder / "nbgrader_config.py"
    config_path.write_text(CONFIG)
    nbformat.write(source_notebook(course), str(notebook_path))
    return [config_path, notebook_path]
