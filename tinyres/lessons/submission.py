"""Grading a whole submission file, as ``tinyres grade`` does, and Gradescope's score file.

    results = grade_submission("hw4.ipynb", course=load_course(), timeout=60)
    total = sum(result.score for result in results.values())      # out of 9
    json.dump(gradescope_results(results), open("results.json", "w"))

The grader's process prepares every case (inputs, tinyres's gradients, finite
differences) and judges; the student's code runs only in the child processes of
:mod:`tinyres.lessons.sandbox`, one per exercise.
"""
from .exercises import EXERCISES
from .grade import cases_of, judge_all, prepare
from .sandbox import DEFAULT_MEMORY_MB, run_in_child, submission_source

DEFAULT_TIMEOUT = 60          # seconds per exercise
HIDDEN_VISIBILITY = "after_published"   # Gradescope shows hidden cases once grades are published


def grade_exercise(source, name, hidden_cases=(), timeout=DEFAULT_TIMEOUT,
                   memory_mb=DEFAULT_MEMORY_MB):
    """Grade exercise ``name`` of the submission ``source`` in a child process: a GradeResult."""
    exercise = EXERCISES[name]
    prepared = [prepare(exercise, case) for case in cases_of(name, hidden_cases)]
    outcomes, message = run_in_child(source, name,
                                     [(p.case, p.grad_output, p.cache) for p in prepared],
                                     timeout=timeout, memory_mb=memory_mb)
    if outcomes is None:
        outcomes = [(None, message)] * len(prepared)
    return judge_all(name, prepared, outcomes, message=message)


def grade_submission(path, course=None, timeout=DEFAULT_TIMEOUT, memory_mb=DEFAULT_MEMORY_MB,
                     on_result=None):
    """Grade the four exercises of the ``.py`` or ``.ipynb`` at ``path``: name -> GradeResult.

    course: a loaded :class:`~tinyres.lessons.course.Course` whose hidden cases are added
    (None: the public cases only).  ``on_result(result)`` is called as each exercise
    finishes.  Raises :class:`~tinyres.lessons.sandbox.SubmissionError` when the file
    cannot be read.
    """
    source = submission_source(path)
    hidden = course.hidden_cases if course is not None else {}
    results = {}
    for name in EXERCISES:
        results[name] = grade_exercise(source, name, hidden.get(name, ()), timeout, memory_mb)
        if on_result is not None:
            on_result(results[name])
    return results


def total_score(results):
    """(points earned, points possible) over the exercises graded."""
    return (sum(result.score for result in results.values()),
            sum(result.max_score for result in results.values()))


def gradescope_results(results):
    """Gradescope's ``results.json``: the total ``score`` and one test per case.

    Each test has ``name`` (``"relu: x (4, 5)"``), ``score``, ``max_score``, ``output``
    (the case's report, with its hint) and ``visibility`` (hidden cases only once the
    grades are published).
    """
    tests = []
    for result in results.values():
        for case in result.cases:
            tests.append({
                "name": case.case.name,
                "score": case.score,
                "max_score": case.max_score,
                "output": case.report().strip(),
                "visibility": HIDDEN_VISIBILITY if case.case.hidden else "visible",
            })
    earned, possible = total_score(results)
    summary = "\n".join(f"{result.name}: {result.score:.2f} / {result.max_score:g}"
                        + (f" ({result.message})" if result.message else "")
                        for result in results.values())
    return {"score": round(earned, 6), "output": f"{summary}\ntotal: {earned:.2f} / {possible:g}",
            "visibility": "visible", "tests": tests}
