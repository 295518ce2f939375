"""The lesson notebook as the template of every graded format (nbgrader, Otter).

Lesson 4 marks its cells with tags: ``exercise-<name>`` on the cell holding the stub
of ``<name>_backward``, ``grade-<name>`` on the grading cell below it.  The formats keep
every other cell as it is and rewrite only those two kinds:

* the stub's ``# YOUR CODE HERE`` / ``raise NotImplementedError`` lines become the
  reference solution between the format's begin and end markers;
* the grading cell gains the hidden cases between the format's hidden-test markers.
"""
import pprint
import textwrap

import nbformat

from .exercises import EXERCISES

EXERCISE_TAG, GRADE_TAG = "exercise-", "grade-"
STUB_LINES = ("# YOUR CODE HERE", "raise NotImplementedError")


def read_lesson(course):
    """The lesson notebook of ``course`` (a :class:`~tinyres.lessons.course.Course`)."""
    if not course.lesson.is_file():
        raise FileNotFoundError(f"the lesson notebook {course.lesson} is missing; the course "
                                "folder must sit beside notebooks/")
    return nbformat.read(str(course.lesson), as_version=4)


def tagged_cells(notebook, prefix):
    """Exercise name -> the cell tagged ``<prefix><name>``; every exercise must have one."""
    cells = {tag[len(prefix):]: cell for cell in notebook.cells
             for tag in cell.metadata.get("tags", []) if tag.startswith(prefix)}
    missing = sorted(set(EXERCISES) - set(cells))
    if missing:
        raise ValueError(f"the lesson notebook has no cell tagged {prefix}<name> for {missing}")
    return cells


def with_solution(stub_source, body, begin, end):
    """The stub cell with its two stub lines replaced by ``body`` between ``begin`` and ``end``."""
    lines = stub_source.splitlines()
    for index, line in enumerate(lines):
        if line.strip() == STUB_LINES[0] and lines[index + 1].strip() == STUB_LINES[1]:
            indent = line[:len(line) - len(line.lstrip())]
            solution = [indent + begin] + textwrap.indent(body, indent).splitlines() + [indent + end]
            return "\n".join(lines[:index] + solution + lines[index + 2:])
    raise ValueError(f"the exercise cell has no {' / '.join(STUB_LINES)} lines:\n{stub_source}")


def cases_literal(cases):
    """Hidden cases as Python source a notebook cell can hold."""
    return pprint.pformat([tuple(case) for case in cases], width=88, sort_dicts=False)


def clear_outputs(notebook):
    """Drop outputs and execution counts, as a committed notebook has them."""
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return notebook
