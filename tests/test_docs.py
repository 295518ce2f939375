"""The documentation's generated parts say what the code says.

* the command-line page lists every subcommand and every flag of ``tinyres``;
* the API pages' parameter tables read the plain docstring lines correctly;
* the degradation page's command is the run behind its figure;
* the lesson pages fail the build on any error but lesson 4's expected ones;
* no docstring or comment of ``tinyres/`` quotes a measured speed: those live in
  ``docs/results/measurements.md``, which names every module that points to it.

Only the fast parts: no site is built and no notebook is run here (``make docs`` does both).
"""
import argparse
import ast
import importlib.util
import io
import json
import pathlib
import re
import shlex
import sys
import tokenize

import nbformat
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _load(name):
    spec = importlib.util.spec_from_file_location(name, DOCS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(name, module)
    spec.loader.exec_module(module)
    return module


site_cli = _load("site_cli")
site_lessons = _load("site_lessons")
griffe_roles = _load("griffe_roles")


# --------------------------------------------------------------------------- command line
def _every_parser(parser):
    yield parser
    for _, sub, _ in site_cli._subcommands(parser):
        yield from _every_parser(sub)


def test_cli_page_lists_every_subcommand_and_flag_of_tinyres():
    from tinyres.cli import build_parser

    page = site_cli.cli_markdown(build_parser())
    parsers = list(_every_parser(build_parser()))
    assert len(parsers) > 5
    for parser in parsers:
        assert f"`{parser.prog}`" in page, parser.prog
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                continue
            assert f"| `{site_cli.invocation(action)}` |" in page, (parser.prog, action.dest)


def test_cli_page_writes_flags_and_help_as_argparse_does():
    parser = argparse.ArgumentParser(prog="tool", description="A tool.")
    commands = parser.add_subparsers(dest="command")
    run = commands.add_parser("run", help="run *it*", description="Run it | fast.")
    run.add_argument("--size", type=int, default=3, help="how big (default: %(default)s)")
    run.add_argument("--mode", choices=("a", "b"), default="a", help="one of %(choices)s")
    run.add_argument("--depths", type=int, nargs="+", default=[1], metavar="D", help="depths")
    run.add_argument("--quiet", action="store_true", help="say nothing")
    commands.add_parser("check", help="check").add_argument("target", help="what to check")
    nested = run.add_subparsers(dest="how").add_parser("inner", help="deeper")
    nested.add_argument("--deep", help="x")
    page = site_cli.cli_markdown(parser)
    assert "| [`tool run`](#tool-run) | run \\*it\\* |" in page
    assert "| [`tool run inner`](#tool-run-inner) | deeper |" in page
    assert "### `tool run inner` {#tool-run-inner}" in page          # nested: still level 3
    assert "Run it \\| fast." in page
    assert "| `--size SIZE` | how big (default: 3) |" in page
    assert "| `--mode {a,b}` | one of a, b |" in page
    assert "| `--depths D [D ...]` | depths |" in page
    assert "| `--quiet` | say nothing |" in page
    assert "| `target` | what to check |" in page
    assert "usage: tool run [-h]" in page


# --------------------------------------------------------------------------- API tables
@pytest.mark.parametrize("text, names, expected", [
    ("input: (N, C, H, W), weight: (K, C, R, S), bias: (K,) or None -> (N, K, Ho, Wo)",
     {"input", "weight", "bias", "stride"},
     {"input": "(N, C, H, W)", "weight": "(K, C, R, S)", "bias": "(K,) or None"}),
    ("grad_output, x: (N, C, H, W), mean, inv_std: (C,) -> dx: (N, C, H, W)",
     {"grad_output", "x", "mean", "inv_std"},
     {"grad_output": "(N, C, H, W)", "x": "(N, C, H, W)", "mean": "(C,)", "inv_std": "(C,)"}),
    ("image: (H, W).  grad_output: (Ho, Wo) gradient (default 1, 2, ... so that\n"
     "sums show).  Left: the image.", {"image", "grad_output"},
     {"image": "(H, W).", "grad_output": "(Ho, Wo) gradient (default 1, 2, ... so that sums show)."}),
    ("Compare.\n\nfn: a callable.\ninputs: tensors; e.g. ``x``. Those are checked.\nmode: full.",
     {"fn", "inputs", "eps"}, {"fn": "a callable.", "inputs": "tensors; e.g. ``x``."}),
    ("Left: not a parameter.\n\n    x: inside a code block", {"x"}, {}),
])
def test_plain_docstring_lines_describe_the_parameters(text, names, expected):
    assert griffe_roles.described_names(text, names) == expected


@pytest.mark.parametrize("text, expected", [
    ("Run it.\n\nReturns the exit status: 0 on success (or 2), e.g. here. Then more.",
     "the exit status: 0 on success (or 2), e.g. here."),
    ("x: (N, C, H, W) -> out: (N, C, Ho, Wo), argmax: (N, C, Ho, Wo)",
     "out: (N, C, Ho, Wo), argmax: (N, C, Ho, Wo)"),
    ("Nothing said about the result.", None),
])
def test_the_returned_value_is_read_from_the_docstring(text, expected):
    assert griffe_roles.returned(text) == expected


def test_api_tables_for_a_dataclass_and_a_function():
    import griffe

    package = griffe.load("tinyres.gradcheck", search_paths=[str(ROOT)], docstring_parser="google",
                          docstring_options={"warn_missing_types": False},     # as mkdocs.yml
                          extensions=griffe.load_extensions(str(DOCS / "griffe_roles.py")))
    report = package["GradcheckReport"]
    sections = {section.kind.value: section for section in report.docstring.parsed}
    fields = {parameter.name: parameter.description for parameter in sections["parameters"].value}
    assert set(fields) == {"function", "mode", "inputs"} and all(fields.values())
    check = package["InputCheck"].docstring.parsed
    described = {p.name: p.description for s in check if s.kind.value == "parameters" for p in s.value}
    assert described["analytic"] == described["numeric"] and all(described.values())
    gradcheck = {section.kind.value: section for section in package["gradcheck"].docstring.parsed}
    names = [parameter.name for parameter in gradcheck["parameters"].value]
    assert names[:3] == ["fn", "inputs", "eps"] and "raise_exception" in names
    assert "GradcheckReport" in gradcheck["returns"].value[0].description


# --------------------------------------------------------------------------- degradation
def test_degradation_page_command_is_the_run_behind_its_figure():
    from tinyres.cli import build_parser

    page = (DOCS / "results" / "degradation.md").read_text()
    command = re.search(r"## The run behind the figure.*?```bash\n(.*?)\n", page, flags=re.S).group(1)
    words = shlex.split(command)
    assert words[:3] == [".venv/bin/tinyres", "experiment", "degradation"]
    args = build_parser().parse_args(words[1:])
    recorded = json.loads((DOCS / "figures" / "degradation.json").read_text())
    assert args.width == recorded["width"] and args.depths == recorded["depths"]
    assert args.backend == recorded["backend"]
    from tinyres.experiments import Recipe
    # an option left out parses to None (or to its value) and means the command's recipe default
    defaults = getattr(args, "recipe_defaults", None) or Recipe()
    for key, value in recorded["recipe"].items():
        given = getattr(args, key, None)
        assert (given if given is not None else getattr(defaults, key)) == value, key
    seconds = sum(result["seconds"] for result in recorded["results"].values())
    assert f"{seconds:,.0f} s" in page and f"**How long it takes: {round(seconds / 60)} minutes**" in page


# --------------------------------------------------------------------------- lessons
def _notebook(*cells):
    notebook = nbformat.v4.new_notebook()
    for tags, error in cells:
        cell = nbformat.v4.new_code_cell("pass", metadata={"tags": tags})
        if error:
            cell.outputs = [nbformat.v4.new_output("error", ename=error, evalue="x", traceback=[])]
        notebook.cells.append(cell)
    return notebook


def test_only_the_assignments_grading_cells_may_fail():
    graded = _notebook((["grade-relu"], "AssertionError"), ([], None))
    assert site_lessons.unexpected_errors(graded, assignment=True) == []
    assert site_lessons.unexpected_errors(graded, assignment=False) == [(0, "AssertionError: x")]
    broken = _notebook((["grade-relu"], "NameError"), (["exercise-relu"], "AssertionError"))
    assert site_lessons.unexpected_errors(broken, assignment=True) == [
        (0, "NameError: x"), (1, "AssertionError: x")]


def test_lesson_banner_links_the_notebook_and_says_why_lesson_4_fails():
    lesson = site_lessons.ExecutedLesson(source=ROOT / "notebooks" / site_lessons.ASSIGNMENT,
                                         rendered=ROOT / "build" / "x.ipynb", seconds=3.2)
    box = site_lessons.banner(lesson, "../downloads/04_gradcheck_assignment.ipynb")
    assert 'href="../downloads/04_gradcheck_assignment.ipynb"' in box and "make lessons" in box
    assert "in 3 s" in box and "on purpose" in box
    plain = site_lessons.ExecutedLesson(source=ROOT / "notebooks" / "01_autograd.ipynb",
                                        rendered=ROOT / "notebooks" / "01_autograd.ipynb")
    assert "without running it" in site_lessons.banner(plain, "x") and "on purpose" not in \
        site_lessons.banner(plain, "x")


# --------------------------------------------------------------------------- measured numbers
# A GFLOP/s figure or a millisecond timing in the code goes stale as the code and the
# machines change; the code says why and points to the page that holds the measurements.
MEASUREMENTS_PAGE = "docs/results/measurements.md"
NUMBER = r"\d[\d.,]*(?:\s*-\s*\d[\d.,]*)?"                  # 45, 0.1, 1,500, 80-95
MEASURED_SPEED = re.compile(rf"{NUMBER}\s*GFLOP/s|{NUMBER}\s*(?:ms|msec|milliseconds?)\b"
                            r"|\b(?:a|one)\s+millisecond\b", flags=re.IGNORECASE)


def _docstrings_and_comments(source):
    """(first line number, text) of every docstring and every run of comment lines."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            first = node.body[0] if node.body else None
            if (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
                    and isinstance(first.value.value, str)):
                yield first.lineno, first.value.value
    run_start, run, previous = None, [], None
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type != tokenize.COMMENT:
            continue
        line = token.start[0]
        if previous is None or line != previous + 1:      # a new run: "0.1\n# ms" stays one
            if run:
                yield run_start, "\n".join(run)
            run_start, run = line, []
        run.append(token.string.lstrip("#"))
        previous = line
    if run:
        yield run_start, "\n".join(run)


def _measured_speeds(source):
    """``(line number, quoted text)`` of every GFLOP/s figure or millisecond timing."""
    for first_line, text in _docstrings_and_comments(source):
        for match in MEASURED_SPEED.finditer(text):
            yield first_line + text.count("\n", 0, match.start()), match.group(0)


@pytest.mark.parametrize("text, quoted", [
    ('"""One core runs it at about 45 GFLOP/s."""', ["45 GFLOP/s"]),
    ('"""The blocks run at 80-95 GFLOP/s instead."""', ["80-95 GFLOP/s"]),
    ("x = 1  # a parallel loop costs about 0.1 ms to start", ["0.1 ms"]),
    ("# starting it takes 0.1\n# ms on two cores\nx = 1", ["0.1\n ms"]),
    ('def f():\n    """Parse once (1500 milliseconds); then cached."""', ["1500 milliseconds"]),
    ('"""Building one costs most of a millisecond."""', ["a millisecond"]),
    ('"""4.1 GFLOPs in the paper\'s sense; ts in microseconds; costs milliseconds."""', []),
    ('x = "12 ms"  # a string that is neither a docstring nor a comment', []),
])
def test_measured_speeds_are_found_in_docstrings_and_comments(text, quoted):
    assert [found for _, found in _measured_speeds(text)] == quoted


def test_no_docstring_or_comment_of_tinyres_quotes_a_measured_speed():
    quoted = [f"{path.relative_to(ROOT)}:{line}: {found!r}"
              for path in sorted((ROOT / "tinyres").rglob("*.py"))
              for line, found in _measured_speeds(path.read_text())]
    assert quoted == [], (f"measured speeds belong in {MEASUREMENTS_PAGE}, with a pointer "
                          f"'(measured: {MEASUREMENTS_PAGE})' in the code:\n" + "\n".join(quoted))


def test_every_module_pointing_to_the_measurements_has_a_section_there():
    page = (ROOT / MEASUREMENTS_PAGE).read_text()
    sections = set(re.findall(r"^## `([^`]+)`", page, flags=re.M))
    pointing = {str(path.relative_to(ROOT)) for path in (ROOT / "tinyres").rglob("*.py")
                if MEASUREMENTS_PAGE in re.sub(r"\s*\n\s*(?:#\s*)?", " ", path.read_text())}
    assert len(pointing) >= 5
    assert pointing <= sections, sorted(pointing - sections)
    assert "measurements.md" in (DOCS / "results" / "benchmarks.md").read_text()
