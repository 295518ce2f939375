"""The lessons in notebooks/ run top to bottom, each in a fresh kernel and a temporary folder.

Every claim in a notebook is followed by a cell that checks it, so "runs without an error"
means "every check holds".  The assignment (lesson 4) is run twice: as shipped, with its
stubs, every grading cell must fail with the report; with the reference solutions of the
course folder put into its tagged exercise cells, every one must pass with full marks.

The kernels run single-threaded.  On a two-core machine that is busy with anything else,
Numba's and BLAS's two worker threads wait for each other at every parallel region, and
the training lessons then take ten to twenty times longer; one thread keeps their run
time predictable (about half a minute each).
"""
import json
import pathlib
import re
import time

import nbformat
import pytest

import submissions
from tinyres.backend.cpu_threads import environment_with_threads

NOTEBOOKS = pathlib.Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOK_PATHS = sorted(NOTEBOOKS.glob("*.ipynb"))
ASSIGNMENT = NOTEBOOKS / "04_gradcheck_assignment.ipynb"
CELL_TIMEOUT = 600            # seconds for any single cell
EXERCISE_TAG = "exercise-"    # cells tagged exercise-<name> hold a student's answer
GRADE_TAG = "grade-"          # and cells tagged grade-<name> grade it
SCORE_MARKER = "GRADES:"


def _execute(notebook, folder, allow_errors=False):
    """Run ``notebook`` (a NotebookNode) in a fresh python3 kernel with ``folder`` as cwd."""
    from nbclient import NotebookClient

    client = NotebookClient(notebook, timeout=CELL_TIMEOUT, kernel_name="python3",
                            allow_errors=allow_errors,
                            resources={"metadata": {"path": str(folder)}})
    environment = environment_with_threads(1)
    started = time.perf_counter()
    client.execute(env=environment)
    return time.perf_counter() - started


def _read(path):
    return nbformat.read(str(path), as_version=4)


def _tagged_cells(notebook, prefix=EXERCISE_TAG):
    return {tag[len(prefix):]: cell for cell in notebook.cells
            for tag in cell.metadata.get("tags", []) if tag.startswith(prefix)}


def _grades(notebook):
    """Append a cell that prints the grades, run it, and read them back: name -> passed."""
    notebook.cells.append(nbformat.v4.new_code_cell(
        "import json\n"
        f"print({SCORE_MARKER!r}, json.dumps({{n: r.passed for n, r in results.items()}}))"))
    return notebook


def _printed_grades(notebook):
    for output in notebook.cells[-1].outputs:
        text = output.get("text", "")
        if text.startswith(SCORE_MARKER):
            return json.loads(text[len(SCORE_MARKER):])
    raise AssertionError("the grades cell printed nothing")


# --------------------------------------------------------------------------- cheap checks
def test_the_lessons_are_the_numbered_ones():
    assert [path.name[:2] for path in NOTEBOOK_PATHS] == ["01", "02", "03", "04", "05", "06", "07",
                                                          "08", "09"]


@pytest.mark.parametrize("path", NOTEBOOK_PATHS, ids=lambda path: path.stem)
def test_notebook_is_committed_clean_and_opens_with_learning_goals(path):
    notebook = _read(path)
    nbformat.validate(notebook)
    assert notebook.metadata.kernelspec.name == "python3"
    first = notebook.cells[0]
    assert first.cell_type == "markdown" and first.source.startswith("# Lesson")
    assert "**Learning goals**" in first.source
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, \
                f"{path.name}: clear the outputs before committing"
    code = "\n".join(c.source for c in notebook.cells if c.cell_type == "code")
    assert re.search(r"^(import|from) tinyres\b", code, flags=re.M), "a lesson uses tinyres"


def test_assignment_has_one_tagged_stub_and_grading_cell_per_exercise():
    from tinyres.lessons import EXERCISES

    notebook = _read(ASSIGNMENT)
    cells = _tagged_cells(notebook)
    assert sorted(cells) == sorted(EXERCISES) == sorted(submissions.course().solutions)
    for name, cell in cells.items():
        assert f"def {name}_backward(grad_output, cache):" in cell.source
        assert "YOUR CODE HERE" in cell.source and "raise NotImplementedError" in cell.source
    for name, cell in _tagged_cells(notebook, GRADE_TAG).items():
        assert f'grade("{name}", {name}_backward' in cell.source and "assert_passed()" in cell.source


# --------------------------------------------------------------------------- execution
@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOK_PATHS, ids=lambda path: path.stem)
def test_notebook_runs_top_to_bottom(path, tmp_path):
    notebook = _read(path)
    if path == ASSIGNMENT:
        _grades(notebook)
    seconds = _execute(notebook, tmp_path, allow_errors=path == ASSIGNMENT)
    print(f"{path.name}: {seconds:.1f} s")
    if path == ASSIGNMENT:   # as shipped, the stubs must be graded red and fail their cells
        grades = _printed_grades(notebook)
        assert grades and not any(grades.values()), grades
        for name, cell in _tagged_cells(notebook, GRADE_TAG).items():
            errors = [output for output in cell.outputs if output.output_type == "error"]
            assert errors and errors[0].ename == "AssertionError", name
            assert "not implemented yet" in errors[0].evalue and "0.00 /" in errors[0].evalue
        errors = [output for cell in notebook.cells for output in cell.get("outputs", [])
                  if output.output_type == "error"]
        assert len(errors) == 4, "only the four grading cells may fail"
    else:                    # and every other lesson shows its plots inline
        outputs = [output for cell in notebook.cells for output in cell.get("outputs", [])]
        assert any("image/png" in output.get("data", {}) for output in outputs)
    assert list(tmp_path.iterdir()) == [], "a lesson left files behind"


@pytest.mark.slow
def test_assignment_with_the_solutions_filled_in_is_graded_green(tmp_path):
    notebook = _grades(submissions.filled_in(_read(ASSIGNMENT), submissions.reference_bodies()))
    _execute(notebook, tmp_path)
    grades = _printed_grades(notebook)
    assert sorted(grades) == ["batch_norm", "conv2d", "max_pool2d", "relu"]
    assert all(grades.values()), grades
    summary = "".join(output.get("text", "") for cell in notebook.cells for output in cell.get("outputs", []))
    assert "9.00 / 9 points; 4 / 4 exercises pass" in summary
