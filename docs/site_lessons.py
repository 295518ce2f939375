"""The lessons as the site shows them: each notebook run top to bottom before it is rendered.

A lesson page is worth reading only with its outputs: the printed checks, the plots, the
grading reports.  The notebooks are committed without outputs (the tests insist on it), so
the build runs each one in a fresh kernel, in an empty temporary folder, exactly as
``tests/test_notebooks.py`` does, and renders the executed copy.

* One thread.  On a two-core machine that is busy with anything else, the worker threads
  of Numba and the BLAS wait for each other at every parallel region and the training
  lessons take ten to twenty times longer; one thread keeps them at about half a minute.
* Errors.  Every lesson must run without one, except the assignment: lesson 4 ships with
  stubs, and each of its grading cells (tagged ``grade-<name>``) fails with an
  ``AssertionError`` that carries the report until the student writes the answer.  Those
  four failures are what its page must show; any other error stops the build.
* A cache.  The executed copies are kept under ``build/docs-lessons/`` with the hash of
  what they depend on (the notebook and the package's sources), so ``mkdocs serve``
  re-runs a lesson only when one of them changed.
"""
import dataclasses
import hashlib
import json
import os
import pathlib
import tempfile
import time

from tinyres.backend.cpu_threads import environment_with_threads

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
PACKAGE = ROOT / "tinyres"
CACHE = ROOT / "build" / "docs-lessons"
ASSIGNMENT = "04_gradcheck_assignment.ipynb"
GRADE_TAG = "grade-"          # lesson 4's grading cells, which fail until answered
CELL_TIMEOUT = 600            # seconds for any single cell


@dataclasses.dataclass
class ExecutedLesson:
    """A lesson as the site renders it.

    source: the committed notebook (what a reader downloads).
    rendered: the notebook the page is made from: the executed copy, or ``source`` itself
    when execution is switched off.
    seconds: how long the execution took (None when it did not run in this build's
    configuration); cached: True when the copy came from an earlier build.
    """
    source: pathlib.Path
    rendered: pathlib.Path
    seconds: float = None
    cached: bool = False

    @property
    def executed(self):
        return self.rendered != self.source


class LessonError(RuntimeError):
    """A lesson failed where it must not (any error outside lesson 4's grading cells)."""


def execution_enabled():
    """False when ``TINYRES_DOCS_EXECUTE`` says so (a quick preview without outputs)."""
    return os.environ.get("TINYRES_DOCS_EXECUTE", "true").strip().lower() not in (
        "0", "false", "no", "off")


def _fingerprint(path):
    """What an executed copy depends on: the notebook, tinyres's sources and this file."""
    digest = hashlib.sha256(path.read_bytes())
    for source in sorted(PACKAGE.rglob("*.py")) + [pathlib.Path(__file__)]:
        digest.update(str(source.relative_to(ROOT)).encode())
        digest.update(source.read_bytes())
    return digest.hexdigest()


def unexpected_errors(notebook, assignment):
    """The error outputs a lesson may not have, as ``[(cell number, "Name: value")]``.

    A lesson may have none; the assignment only an ``AssertionError`` in a grading cell.
    """
    errors = []
    for number, cell in enumerate(notebook.cells):
        tags = cell.metadata.get("tags", [])
        grading = assignment and any(tag.startswith(GRADE_TAG) for tag in tags)
        for output in cell.get("outputs", []):
            if output.output_type != "error":
                continue
            if grading and output.ename == "AssertionError":
                continue
            errors.append((number, f"{output.ename}: {output.evalue}"))
    return errors


def run(path, folder):
    """Execute the notebook at ``path`` in a fresh kernel with ``folder`` as its working folder.

    Returns ``(executed notebook, seconds)``.  Raises :class:`LessonError` when the lesson
    fails anywhere it must not.
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    notebook = nbformat.read(str(path), as_version=4)
    assignment = path.name == ASSIGNMENT
    client = NotebookClient(notebook, timeout=CELL_TIMEOUT, kernel_name="python3",
                            allow_errors=assignment, resources={"metadata": {"path": str(folder)}})
    environment = environment_with_threads(1)
    started = time.perf_counter()
    try:
        client.execute(env=environment)
    except CellExecutionError as error:
        raise LessonError(f"{path.name} failed while the site was built:\n{error}") from None
    seconds = time.perf_counter() - started
    errors = unexpected_errors(notebook, assignment)
    if errors:
        listed = "; ".join(f"cell {number}: {error}" for number, error in errors)
        raise LessonError(f"{path.name}: errors outside the grading cells: {listed}")
    return notebook, seconds


def executed(path, cache=CACHE, log=print):
    """The lesson at ``path`` as the site renders it (an :class:`ExecutedLesson`), run if needed.

    The executed copy is ``cache/notebooks/<name>.ipynb``; beside it ``<name>.json`` keeps
    the fingerprint it was made from and the seconds it took.
    """
    import nbformat

    if not execution_enabled():
        return ExecutedLesson(source=path, rendered=path)
    target = cache / "notebooks" / path.name
    record = target.with_suffix(".json")
    fingerprint = _fingerprint(path)
    if target.is_file() and record.is_file():
        saved = json.loads(record.read_text())
        if saved.get("fingerprint") == fingerprint:
            return ExecutedLesson(source=path, rendered=target, seconds=saved["seconds"],
                                  cached=True)
    with tempfile.TemporaryDirectory(prefix="tinyres-lesson-") as folder:
        notebook, seconds = run(path, pathlib.Path(folder))
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, str(target))
    record.write_text(json.dumps({"fingerprint": fingerprint, "seconds": seconds}))
    log(f"executed {path.name} in {seconds:.1f} s")
    return ExecutedLesson(source=path, rendered=target, seconds=seconds)


def banner(lesson, download_url):
    """The box at the top of a lesson page: the notebook to download, how to run it, how it ran."""
    name = lesson.source.name
    if lesson.executed:
        ran = (f"This page shows the notebook as it ran when the site was built: top to bottom "
               f"in a fresh kernel, on one thread, in {lesson.seconds:.0f} s.")
    else:
        ran = "This page shows the notebook as committed, without running it: no outputs."
    if name == ASSIGNMENT:
        ran += (" The four grading cells end in a red <code>AssertionError</code> on purpose: "
                "the exercise cells still hold their stubs, and a grading cell fails, with its "
                "report, until the answer above it is right.")
    return (
        '<div class="admonition info lesson-source">\n'
        '<p class="admonition-title">Run this lesson yourself</p>\n'
        f'<p>Download <a href="{download_url}" download="{name}"><code>{name}</code></a>, or in '
        "a checkout of the repository run <code>make lessons</code>: it installs the "
        "<code>lessons</code> extra into <code>.venv</code> and starts JupyterLab on "
        f"<code>notebooks/</code>, where this lesson is <code>notebooks/{name}</code>.</p>\n"
        f"<p>{ran}</p>\n"
        "</div>\n")
