"""The grader of the gradient-check assignment: is a student's backward pass right, and where not?

    from tinyres.lessons import grade
    result = grade("relu", relu_backward)     # prints the report, case by case
    result.score, result.max_score            # 1.0 of 1 point: partial credit per case
    result.assert_passed()                    # raises AssertionError carrying the report

Grading is two steps, kept apart so that they can run in two processes
(``tinyres grade`` runs the student's code in a child process and judges in its own):

1. :func:`run_answer` calls the student's ``backward(grad_output, cache)`` on each case,
   inside :func:`~tinyres.backend.guard.answer_guard`, so tinyres's own gradients refuse
   to run, and turns what came back into arrays or a sentence saying what went wrong.
2. :func:`judge` compares each gradient with two independent references in float64:
   tinyres's own op (the relative error must stay below ``tolerance``, 1e-7; a correct
   answer reaches 1e-12), and central finite differences of the exercise's forward
   (``|a - n| <= 1e-5 + 1e-3 |n|``, so a pass never depends on tinyres being right):

       abs_error = max_i |a_i - b_i|,   rel_error = abs_error / max_i |b_i|

   A failing case reports its worst element (index, value returned, value expected), the
   share of wrong elements and the first hint of :mod:`tinyres.lessons.hints` that fits.

Each case is worth ``points / number of cases``: an answer that passes 2 of 3 cases of
max pooling earns 1.33 of its 2 points.
"""
import warnings
from dataclasses import dataclass, field

import numpy as np

from ..backend import use_backend
from ..backend.guard import NotAllowedInAnswerError, answer_guard
from ..tensor import tensor
from .exercises import EXERCISES

TOLERANCE = 1e-7
FINITE_DIFFERENCE_STEP = 1e-6
FINITE_DIFFERENCE_ATOL, FINITE_DIFFERENCE_RTOL = 1e-5, 1e-3   # tr.gradcheck's defaults


class StudentAnswerError(ValueError):
    """The backward returned something that is not one gradient per input of the right shape."""


class CacheKeyError(KeyError):
    """A key the cache does not hold; the message lists the keys it does hold."""

    def __str__(self):
        return self.args[0]


class Cache(dict):
    """The forward's cache as the student receives it: a dict whose missing keys are explained."""

    def __missing__(self, key):
        raise CacheKeyError(f"the cache has no key {key!r}; it holds {sorted(self)}")


# --------------------------------------------------------------------------- results
@dataclass
class GradientCheck:
    """One gradient of one case against tinyres and against finite differences."""
    name: str                 # "dx", "dweight", ...
    abs_error: float          # max |returned - expected|
    rel_error: float          # abs_error / max |expected|
    worst_index: tuple        # where |returned - expected| is largest
    returned: float           # the student's value there
    expected: float           # tinyres's value there
    wrong_share: float        # share of elements off by more than tolerance * max |expected|
    finite_differences_agree: bool
    tolerance: float = TOLERANCE

    @property
    def passed(self):
        return self.rel_error < self.tolerance and self.finite_differences_agree

    def __str__(self):
        text = (f"{self.name}: abs error {self.abs_error:.1e}, relative error {self.rel_error:.1e}")
        if self.rel_error >= self.tolerance:
            text += (f"; {100 * self.wrong_share:.0f}% of elements wrong, the worst at "
                     f"{self.worst_index}: returned {self.returned:.6g}, expected {self.expected:.6g}")
        if not self.finite_differences_agree:
            text += "; finite differences disagree too"
        return text


@dataclass
class CaseResult:
    """How one case went: a check per gradient, or the sentence saying why there is no answer."""
    case: object              # the exercises.Case
    max_score: float          # this case's share of the exercise's points
    gradients: list = field(default_factory=list)
    message: str = ""         # why there is no answer ("" when the answer was checked)
    hint: str = ""

    @property
    def passed(self):
        return not self.message and bool(self.gradients) and all(g.passed for g in self.gradients)

    @property
    def score(self):
        return self.max_score if self.passed else 0.0

    @property
    def description(self):
        return self.case.description

    @property
    def rel_errors(self):
        """Gradient name -> relative error against tinyres."""
        return {check.name: check.rel_error for check in self.gradients}

    @property
    def finite_differences_passed(self):
        return bool(self.gradients) and all(g.finite_differences_agree for g in self.gradients)

    def report(self, show_message=True):
        """The lines describing this case: verdict, then each wrong gradient and the hint."""
        hidden = " (hidden)" if self.case.hidden else ""
        lines = [f"  {'ok   ' if self.passed else 'WRONG'} {self.case.description}{hidden}"]
        if self.message and show_message:
            lines.append(f"        {self.message}")
        for check in self.gradients:
            if not self.passed:
                lines.append(f"        {check}")
        if self.hint:
            lines.append(f"        hint: {self.hint}")
        return "\n".join(lines)


@dataclass
class GradeResult:
    """The grade of one exercise: its cases, its score and, printed, a report that teaches."""
    name: str
    max_score: float
    cases: list = field(default_factory=list)
    message: str = ""         # why no case could run (a time limit, a missing function)

    @property
    def passed(self):
        return bool(self.cases) and not self.message and all(case.passed for case in self.cases)

    @property
    def score(self):
        """Points earned: the exercise's points times the share of cases passed."""
        return 0.0 if self.message else float(sum(case.score for case in self.cases))

    @property
    def max_rel_error(self):
        """Largest relative error against tinyres over every case and gradient (nan if none ran)."""
        errors = [error for case in self.cases for error in case.rel_errors.values()]
        return max(errors) if errors else float("nan")

    def _shared_message(self):
        """The message every case failed with, if they all failed the same way."""
        messages = {case.message for case in self.cases}
        return messages.pop() if len(messages) == 1 else ""

    def __str__(self):
        verdict = "PASS" if self.passed else "FAIL"
        passed = sum(case.passed for case in self.cases)
        possible = f"{self.max_score:g}" if float(self.max_score).is_integer() else f"{self.max_score:.2f}"
        head = (f"{verdict}  {self.name:<11} {self.score:.2f} / {possible} points: "
                f"{passed} of {len(self.cases)} cases pass")
        message = self.message or self._shared_message()
        lines = [head] + ([f"  {message}"] if message else [])
        lines += [case.report(show_message=not message) for case in self.cases]
        return "\n".join(lines)

    def _repr_pretty_(self, printer, cycle):
        printer.text(str(self))

    def assert_passed(self, partial_credit=False):
        """Raise ``AssertionError`` carrying the whole report unless every case passed.

        With ``partial_credit=True`` it raises only when no point was earned.  When it
        does not raise it prints the report and returns the score, which nbgrader reads
        as the cell's partial credit.  So a grading cell shows the report once, either way.
        """
        if not self.passed and not (partial_credit and self.score > 0):
            raise AssertionError("\n" + str(self))
        print(self)
        return round(self.score, 6)


# --------------------------------------------------------------------------- step 1: the answer
def _as_gradients(answer, exercise, shapes):
    """The student's answer as one float64 array per input, or a StudentAnswerError saying why not."""
    names = exercise.gradients
    function = f"{exercise.name}_backward"
    if len(names) == 1 and not isinstance(answer, (tuple, list)):
        answer = (answer,)
    if not isinstance(answer, (tuple, list)) or len(answer) != len(names):
        got = f"{len(answer)} values" if isinstance(answer, (tuple, list)) else type(answer).__name__
        raise StudentAnswerError(f"{function} must return {len(names)} gradient(s) "
                                 f"({', '.join(names)}), got {got}")
    gradients = []
    for name, value, shape in zip(names, answer, shapes):
        if value is None:
            raise StudentAnswerError(f"{function} returned None for {name}; "
                                     f"expected an array of shape {tuple(shape)}")
        try:
            value = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError) as error:
            raise StudentAnswerError(f"{function}: {name} is not an array of numbers ({error})")
        if value.shape != tuple(shape):
            raise StudentAnswerError(f"{function}: {name} has shape {value.shape}, expected "
                                     f"{tuple(shape)} (a gradient has the shape of its input)")
        gradients.append(value)
    return tuple(gradients)


def _describe_failure(exercise, error):
    """One sentence for an answer that raised instead of returning."""
    function = f"{exercise.name}_backward"
    if isinstance(error, NotImplementedError):
        return f"not implemented yet ({function} raised NotImplementedError)"
    if isinstance(error, (StudentAnswerError, NotAllowedInAnswerError)):
        return str(error)
    if isinstance(error, MemoryError):
        return f"{function} ran out of memory"
    return f"{function} raised {type(error).__name__}: {error}"


def run_answer(exercise, backward, cases_inputs):
    """Call ``backward`` on each case: ``[(gradients, None) or (None, message), ...]``.

    cases_inputs: ``[(case, grad_output, cache), ...]``.  Each call gets copies, so an
    answer that writes into its arguments cannot spoil the next check, and runs inside
    the answer guard with warnings silenced.
    """
    outcomes = []
    for case, grad_output, cache in cases_inputs:
        copies = Cache({key: value.copy() if isinstance(value, np.ndarray) else value
                        for key, value in cache.items()})
        try:
            # warnings silenced: nbgrader gives 0 to any cell that writes to stderr, and the
            # report, not a RuntimeWarning, is what tells the student what went wrong
            with answer_guard(), warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                answer = backward(grad_output.copy(), copies)
            outcomes.append((_as_gradients(answer, exercise, case.shapes), None))
        except Exception as error:  # the student's code failed: say how, do not raise
            outcomes.append((None, _describe_failure(exercise, error)))
    return outcomes


# --------------------------------------------------------------------------- step 2: the judge
@dataclass
class PreparedCase:
    """A case with its inputs drawn and its two references computed, ready to judge answers."""
    case: object
    arrays: list
    grad_output: np.ndarray
    cache: dict
    expected: tuple           # tinyres's gradients
    numeric: tuple            # central finite differences


def _finite_differences(exercise, case, arrays, grad_output):
    """dL/d(input) for L = sum(grad_output * forward(inputs)), one element at a time.

    dL/da_i ~= (L(a + eps e_i) - L(a - eps e_i)) / (2 eps)
    """
    def loss(values):
        return float(np.sum(grad_output * exercise.forward(*values, **case.settings)[0]))

    gradients = []
    for index, array in enumerate(arrays):
        gradient = np.zeros_like(array)
        for position in np.ndindex(array.shape):
            values = [a.copy() for a in arrays]
            values[index][position] += FINITE_DIFFERENCE_STEP
            up = loss(values)
            values[index][position] -= 2 * FINITE_DIFFERENCE_STEP
            gradient[position] = (up - loss(values)) / (2 * FINITE_DIFFERENCE_STEP)
        gradients.append(gradient)
    return tuple(gradients)


def prepare(exercise, case):
    """Draw the case's inputs, run the forward, and compute both reference gradients."""
    arrays, grad_output = exercise.inputs_for(case)
    _, cache = exercise.forward(*[a.copy() for a in arrays], **case.settings)
    with use_backend("numpy"):
        references = [tensor(array.copy(), requires_grad=True) for array in arrays]
        exercise.tinyres_op(*references, **case.settings).backward(grad_output)
    expected = tuple(reference.grad.numpy() for reference in references)
    numeric = _finite_differences(exercise, case, arrays, grad_output)
    return PreparedCase(case, arrays, grad_output, cache, expected, numeric)


def _check_gradient(name, returned, expected, numeric, tolerance):
    error = np.abs(returned - expected)
    scale = max(float(np.abs(expected).max(initial=0.0)), 1e-12)
    worst = np.unravel_index(int(np.argmax(error)), error.shape) if error.size else ()
    worst = tuple(int(i) for i in worst)
    agree = bool(np.all(np.abs(returned - numeric)
                        <= FINITE_DIFFERENCE_ATOL + FINITE_DIFFERENCE_RTOL * np.abs(numeric)))
    return GradientCheck(
        name, float(error.max(initial=0.0)), float(error.max(initial=0.0)) / scale, worst,
        float(returned[worst]) if error.size else 0.0, float(expected[worst]) if error.size else 0.0,
        float(np.mean(error > tolerance * scale)) if error.size else 0.0, agree, tolerance)


def _first_hint(exercise, prepared, gradients):
    returned = dict(zip(exercise.gradients, gradients))
    expected = dict(zip(exercise.gradients, prepared.expected))
    for hint in exercise.hints:
        sentence = hint(prepared.cache, returned, expected)
        if sentence:
            return sentence
    return ""


def judge(exercise, prepared, outcome, max_score, tolerance=TOLERANCE):
    """Judge one answer ``(gradients, message)`` of a prepared case: a :class:`CaseResult`."""
    gradients, message = outcome
    result = CaseResult(prepared.case, max_score, message=message or "")
    if gradients is None:
        return result
    result.gradients = [_check_gradient(name, mine, expected, numeric, tolerance)
                        for name, mine, expected, numeric
                        in zip(exercise.gradients, gradients, prepared.expected, prepared.numeric)]
    if not result.passed:
        result.hint = _first_hint(exercise, prepared, gradients)
    return result


def cases_of(name, hidden_cases=()):
    """The public cases of exercise ``name`` and, after them, ``hidden_cases`` given as
    ``(description, shapes, settings, seed)``, as the course folder and the hidden tests hold them."""
    exercise = EXERCISES[name]
    return list(exercise.cases) + [exercise.make_case(description, shapes, settings, seed, hidden=True)
                                   for description, shapes, settings, seed in hidden_cases]


def judge_all(name, prepared_cases, outcomes, tolerance=TOLERANCE, message="", share=None):
    """Judge every case of exercise ``name``; ``message`` set means no answer came (a time limit).

    share: the points of one case (default: the exercise's points over these cases).
    """
    exercise = EXERCISES[name]
    share = exercise.points / len(prepared_cases) if share is None else share
    result = GradeResult(name, share * len(prepared_cases), message=message)
    for prepared, outcome in zip(prepared_cases, outcomes):
        result.cases.append(judge(exercise, prepared, outcome, share, tolerance))
    return result


def _check_arguments(name, student_backward):
    if name not in EXERCISES:
        raise ValueError(f"grade: unknown exercise {name!r}; expected one of {sorted(EXERCISES)}")
    if not callable(student_backward):
        raise TypeError(f"grade: student_backward must be a function "
                        f"backward(grad_output, cache), got {type(student_backward).__name__}")


def grade(name, student_backward, hidden_cases=(), tolerance=TOLERANCE, verbose=True, only=None):
    """Grade ``student_backward(grad_output, cache)`` for exercise ``name``; returns a GradeResult.

    name: ``"relu"``, ``"max_pool2d"``, ``"conv2d"`` or ``"batch_norm"``.
    hidden_cases: more cases as ``(description, shapes, settings, seed)`` (the hidden tests).
    only: the description of one case to grade alone, worth its share of the points
    (one test per case, as Otter scores them).
    Prints the report unless ``verbose=False``; mistakes in the answer are reported, never raised.
    """
    _check_arguments(name, student_backward)
    exercise = EXERCISES[name]
    cases = cases_of(name, hidden_cases)
    share = exercise.points / len(cases)
    if only is not None:
        chosen = [case for case in cases if case.description == only]
        if not chosen:
            raise ValueError(f"grade: {name} has no case {only!r}; its cases are "
                             f"{[case.description for case in cases]}")
        cases = chosen
    prepared = [prepare(exercise, case) for case in cases]
    outcomes = run_answer(exercise, student_backward,
                          [(p.case, p.grad_output, p.cache) for p in prepared])
    result = judge_all(name, prepared, outcomes, tolerance, share=share)
    if verbose:
        print(result)
    return result


def grade_all(answers, verbose=True):
    """Grade several exercises: ``answers`` maps exercise name -> backward; returns name -> GradeResult."""
    return {name: grade(name, backward, verbose=verbose) for name, backward in answers.items()}
