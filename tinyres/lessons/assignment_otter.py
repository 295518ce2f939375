"""The assignment as an Otter-Grader master notebook (``tinyres assignment otter DIR``).

    DIR/gradcheck.ipynb

The master notebook is the lesson in Otter Assign's format (Otter 7): raw cells whose
first line is ``# ASSIGNMENT CONFIG``, ``# BEGIN QUESTION``, ``# BEGIN SOLUTION``,
``# BEGIN TESTS`` (and their ``# END ...``) mark what Otter turns into the student
notebook, the autograder notebook and the Gradescope autograder zip:

* one config cell (YAML, see :data:`CONFIG`): exception-based tests kept in the
  notebook's metadata, the autograder zip generated, no PDF, no export cell, and the
  tests run against the solutions, so ``otter assign`` fails when a reference answer does;
* one question per exercise, worth the exercise's points, wrapping the lesson's own
  cells: its heading, its demo, then the exercise cell in a solution block and a test
  cell per case in a tests block, where the lesson has its grading cell;
* the exercise cell holds the reference answer between ``# BEGIN SOLUTION NO PROMPT`` and
  ``# END SOLUTION``, and before it the lesson's stub inside a string literal whose two
  lines end in ``# BEGIN PROMPT`` and ``# END PROMPT``: the student version drops the
  answer and those two lines, which leaves the stub that raises ``NotImplementedError``;
* one test per case, public or hidden, each raising ``AssertionError`` with tinyres's
  report of that case unless it passes.  Otter scores a test all or nothing and shares a
  question's points equally among its tests, which is tinyres's partial credit per case.

The lesson's score cells read the ``results`` the grading cells fill; here Otter's own
check-all cell replaces them.  Then, with the virtualenv's ``bin/`` on ``PATH`` (Otter
starts a ``python3`` kernel): ``otter assign DIR/gradcheck.ipynb dist``, and
``otter run -a dist/autograder/gradcheck-autograder_*.zip submission.ipynb``.
"""
import pathlib
import re
import textwrap

import nbformat

from .assignment_notebook import (EXERCISE_TAG, GRADE_TAG, STUB_LINES, cases_literal,
                                  clear_outputs, read_lesson, tagged_cells, with_solution)
from .exercises import EXERCISES

ASSIGNMENT = "gradcheck"
SOLUTION_BEGIN, SOLUTION_END = "# BEGIN SOLUTION NO PROMPT", "# END SOLUTION"
PROMPT_BEGIN, PROMPT_END = '""" # BEGIN PROMPT', '""" # END PROMPT'
SCORE_HEADING = "## Your score"

CONFIG = f"""\
# ASSIGNMENT CONFIG
name: {ASSIGNMENT}
# the autograder's environment.yml adds these to otter-grader (not in place of it:
# overwrite_requirements stays false); nothing is installed by otter assign or otter run
requirements:
  - tinyres
overwrite_requirements: false
# exception-based tests, kept in the notebook's metadata: a test raises with tinyres's report
tests:
  files: false
  ok_format: false
# the Gradescope autograder zip, without PDFs (the questions are all autograded);
# show_hidden lets students read the hidden tests' report once the grades are published
generate:
  pdf: false
  show_hidden: true
solutions_pdf: false
template_pdf: false
# students upload the notebook itself: no export cell, which would zip it and make a PDF
export_cell: false
init_cell: true
check_all_cell: true
show_question_points: true
# grade the solutions notebook with the autograder zip: otter assign fails unless 9 / 9
run_tests: true
"""


def _raw(source):
    return nbformat.v4.new_raw_cell(source)


def solution_cell_source(stub_source, body):
    """The exercise cell with the reference ``body`` as the solution and the stub as the prompt.

    In the master (and the autograder notebook) the stub is a string expression that
    does nothing; in the student notebook it is all that is left of the answer.
    """
    source = with_solution(stub_source, body, SOLUTION_BEGIN, SOLUTION_END)

    def with_prompt(match):
        indent = match.group(1)
        prompt = [PROMPT_BEGIN, *STUB_LINES, PROMPT_END]
        return "\n".join(indent + line for line in prompt) + "\n" + match.group(0)

    return re.sub(rf"^([ \t]*){re.escape(SOLUTION_BEGIN)}$", with_prompt, source, flags=re.M)


def test_cell_source(name, number, case):
    """The test cell of one case: Otter's test config, then one test function and its call.

    Otter's exception-based format allows no more (the function's parameters are looked
    up by name in the notebook's globals).  The function imports ``grade`` itself rather
    than take the notebook's, which a student could redefine.  The test grades the one
    case (``only=``), so Otter's all-or-nothing test is tinyres's per-case partial credit;
    a hidden case carries its own definition.  The config sets no points: Otter then
    shares the question's points equally among its tests, as tinyres shares them among cases.
    """
    config = [f"hidden: {'true' if case.hidden else 'false'}"]
    body = ["from tinyres.lessons import grade"]
    cases = ""
    if case.hidden:
        body.append(f"hidden_cases = {cases_literal([case.spec()])}")
        cases = "hidden_cases=hidden_cases, "
    body.append(f'grade("{name}", {name}_backward, {cases}only={case.description!r}, '
                "verbose=False).assert_passed()")
    function = f"test_{name}_{number}"   # one test file per question: the names must differ
    return "\n".join([
        '""" # BEGIN TEST CONFIG', *config, '""" # END TEST CONFIG',
        f"def {function}({name}_backward):",
        textwrap.indent("\n".join(body), "    "),
        "",
        f"{function}({name}_backward)",
    ])


def question_cells(name, cells, course):
    """The lesson's cells of exercise ``name`` (heading, demo, exercise, grading cell) as a question.

    Otter locks the question's own cells (heading and demo), as it does every prompt;
    the grading cell becomes one test per case, and ``otter assign`` puts a
    ``grader.check("<name>")`` cell in its place.
    """
    *prompt, exercise_cell, _grading_cell = cells
    exercise_cell.source = solution_cell_source(exercise_cell.source, course.solution_body(name))
    tests = [nbformat.v4.new_code_cell(test_cell_source(name, number, case))
             for number, case in enumerate(course.cases(name), start=1)]
    return [_raw(f"# BEGIN QUESTION\nname: {name}\npoints: {EXERCISES[name].points}"),
            *prompt,
            _raw("# BEGIN SOLUTION"), exercise_cell, _raw("# END SOLUTION"),
            _raw("# BEGIN TESTS"), *tests, _raw("# END TESTS"),
            _raw("# END QUESTION")]


def _without_score_cells(cells):
    """The cells without the lesson's score section (the heading and the code cell after it).

    That cell sums the ``results`` the lesson's grading cells fill, which the tests
    replace here; it would print 0 / 0.  Otter's check-all cell takes its place.
    """
    for index, cell in enumerate(cells[:-1]):
        if cell.cell_type == "markdown" and cell.source.startswith(SCORE_HEADING):
            if cells[index + 1].cell_type == "code":
                return cells[:index] + cells[index + 2:]
    return cells


def _heading_index(cells, start, exercise_index, name):
    """Where exercise ``name``'s section begins: its last markdown cell before the exercise cell."""
    for index in range(exercise_index - 1, start - 1, -1):
        if cells[index].cell_type == "markdown":
            return index
    raise ValueError(f"the lesson has no markdown cell introducing exercise {name}")


def master_notebook(course):
    """The Otter master notebook made from the lesson and ``course``."""
    notebook = clear_outputs(read_lesson(course))
    lesson = notebook.cells
    exercise_cells = tagged_cells(notebook, EXERCISE_TAG)
    grade_cells = tagged_cells(notebook, GRADE_TAG)
    names = {id(cell): name for name, cell in exercise_cells.items()}
    cells, start = [_raw(CONFIG)], 0    # start: the first lesson cell not yet copied
    for index, cell in enumerate(lesson):
        name = names.get(id(cell))
        if name is None:
            continue
        if index + 1 == len(lesson) or lesson[index + 1] is not grade_cells[name]:
            raise ValueError(f"the lesson's grading cell of {name} must follow its exercise cell")
        heading = _heading_index(lesson, start, index, name)
        cells += lesson[start:heading]
        cells += question_cells(name, lesson[heading:index + 2], course)
        start = index + 2
    cells += lesson[start:]
    notebook.cells = _without_score_cells(cells)
    return notebook


def write_otter_master(course, folder):
    """Write ``folder/gradcheck.ipynb``, the master notebook; returns the paths written."""
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    notebook_path = folder / f"{ASSIGNMENT}.ipynb"
    nbformat.write(master_notebook(course), str(notebook_path))
    return [notebook_path]
