"""Running a student's submission in a child process with a time and memory limit.

``tinyres grade`` never runs a student's code in its own process.  For each exercise a
fresh interpreter (multiprocessing's ``spawn``: nothing of the grader's memory is
inherited, so the expected gradients are not there to read) loads the submission, calls
its ``<name>_backward`` on each case inside the answer guard and sends the gradients
back.  The parent judges them.  So an answer that never returns, calls ``sys.exit``,
crashes the interpreter or exhausts its memory costs that exercise's points, with a
sentence saying what happened, and the other exercises are still graded.

    source = submission_source("hw4.ipynb")    # the imports and definitions, as Python text
    outcomes, message = run_in_child(source, "relu", cases_inputs, timeout=60)
"""
import ast
import contextlib
import io
import json
import multiprocessing
import pathlib
import time

SUFFIXES = (".py", ".ipynb")
STARTUP_SECONDS = 120         # importing NumPy and tinyres in the child; not the answer's time
DEFAULT_MEMORY_MB = 4096


class SubmissionError(ValueError):
    """The submission cannot be read: missing, of another kind, or not a notebook."""


def _definitions_only(source):
    """The imports, function and class definitions and constant assignments of one cell.

    A notebook also holds demos and grading calls; only what defines the answer is kept.
    IPython's ``%magics`` and ``!shell`` lines are dropped first.  A cell that does not
    parse is kept as it is, so the syntax error reaches the student's report.
    """
    lines = [line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))]
    text = "\n".join(lines)
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return text
    kept = []
    for node in tree.body:
        definition = isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef,
                                       ast.AsyncFunctionDef, ast.ClassDef))
        constant = isinstance(node, ast.Assign) and _is_literal(node.value)
        if definition or constant:
            kept.append(ast.get_source_segment(text, node))
    return "\n".join(kept)


def _is_literal(node):
    try:
        ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


def submission_source(path):
    """The Python text of a submission: a ``.py`` file whole, or a notebook's definitions.

    Raises :class:`SubmissionError` saying why when the file cannot be read.
    """
    path = pathlib.Path(path)
    if path.suffix not in SUFFIXES:
        raise SubmissionError(f"{path}: expected a .py file or an .ipynb notebook, "
                              f"got a {path.suffix or 'file without a suffix'}")
    if not path.is_file():
        raise SubmissionError(f"{path}: no such file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise SubmissionError(f"{path}: cannot be read ({error})") from error
    if path.suffix == ".py":
        return text
    try:
        cells = json.loads(text)["cells"]
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise SubmissionError(f"{path}: not a Jupyter notebook ({error})") from error
    sources = ["".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
               for cell in cells if cell.get("cell_type") == "code"]
    return "\n\n".join(_definitions_only(source) for source in sources)


def _limit_resources(megabytes):
    """Cap the child's address space at what it uses now plus ``megabytes``; no core files."""
    import resource

    with open("/proc/self/statm") as statm:
        used = int(statm.read().split()[0]) * resource.getpagesize()
    limit = used + megabytes * 2 ** 20
    resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))   # a crashing answer leaves nothing behind


def _child(source, name, cases_inputs, memory_mb, connection):
    """The child process: load the submission, run one exercise's answer, send the outcomes."""
    from .exercises import EXERCISES
    from .grade import run_answer

    with contextlib.suppress(OSError, ImportError, ValueError):
        _limit_resources(memory_mb)
    connection.send(("started", None))
    namespace = {"__name__": "submission"}
    printed = io.StringIO()   # the student's prints are not the grader's output
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
        try:
            exec(compile(source, "submission", "exec"), namespace)
        except BaseException as error:  # noqa: BLE001 -- anything the submission does is reported
            if f"{name}_backward" not in namespace:
                connection.send(("failed", f"the submission failed to load: "
                                           f"{type(error).__name__}: {error}"))
                return
        backward = namespace.get(f"{name}_backward")
        if not callable(backward):
            connection.send(("failed", f"the submission defines no function {name}_backward"))
            return
        outcomes = run_answer(EXERCISES[name], backward, cases_inputs)
    connection.send(("done", outcomes))


def _receive(connection, process, seconds):
    """``(message, timed_out)``: the next message within ``seconds``, or None and why not."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if connection.poll(0.05):
            try:
                return connection.recv(), False
            except (EOFError, OSError):   # the child closed its end: it is ending
                return None, False
        if not process.is_alive():
            return None, False
    return None, True


def _why_it_ended(exitcode):
    if exitcode is not None and exitcode < 0:
        return (f"the answer's process was killed by signal {-exitcode}"
                + (" (out of memory?)" if -exitcode == 9 else ""))
    return f"the answer ended its process (exit status {exitcode}) before returning"


def run_in_child(source, name, cases_inputs, timeout=60, memory_mb=DEFAULT_MEMORY_MB):
    """Run exercise ``name`` of the submission ``source`` in a fresh process.

    cases_inputs: ``[(case, grad_output, cache), ...]``.  Returns ``(outcomes, "")`` as
    :func:`~tinyres.lessons.grade.run_answer` gives them, or ``(None, message)`` when no
    answer came: the time limit passed, the process ended, or the submission lacks the function.
    The time limit counts from the moment the child has imported NumPy and tinyres.
    """
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_child, args=(source, name, cases_inputs, memory_mb, sender),
                              daemon=True)
    process.start()
    sender.close()
    started = message = None
    ran_out_of_time = False
    try:
        started, ran_out_of_time = _receive(receiver, process, STARTUP_SECONDS)
        if started is not None:
            message, ran_out_of_time = _receive(receiver, process, timeout)
    finally:
        process.join(0 if ran_out_of_time else 5)
        if process.is_alive():
            process.kill()
            process.join()
        receiver.close()
    if message is None:
        if ran_out_of_time:
            limit = timeout if started is not None else STARTUP_SECONDS
            return None, f"stopped after {limit:g} s: the answer did not return in time"
        return None, _why_it_ended(process.exitcode)
    kind, payload = message
    return (payload, "") if kind == "done" else (None, payload)
