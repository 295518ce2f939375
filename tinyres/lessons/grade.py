"""The grader of the gradient-check assignment: is a student's backward pass right?

    from tinyres.lessons import grade
    result = grade("relu", relu_backward)     # prints PASS or FAIL with the errors
    result.passed                             # True / False

For every test case of the exercise (see :mod:`tinyres.lessons.exercises`) the
student's ``backward(grad_output, cache)`` is checked two independent ways, in float64.

First, against tinyres's own gradients of the same op (``loss.backward()`` through
``tinyres.functional``), by the relative error, which must stay below ``tolerance``
(1e-7; a correct float64 answer reaches 1e-12):

    rel_error(a, b) = max_i |a_i - b_i| / max(1e-8, |a_i| + |b_i|)

Second, against central finite differences: the student's backward is wrapped in an
autograd :class:`~tinyres.autograd.Function` and :func:`tinyres.gradcheck` runs on it, so
a pass never depends on tinyres being right either.

Mistakes are reported, never raised: a stub that raises ``NotImplementedError``, an
answer of the wrong shape or an exception inside the student's code each give a FAIL
with a sentence saying what happened.
"""
from dataclasses import dataclass, field

import numpy as np

from ..autograd import Function
from ..backend import use_backend
from ..gradcheck import gradcheck, rel_error
from ..tensor import tensor
from .exercises import EXERCISES

TOLERANCE = 1e-7


class StudentAnswerError(ValueError):
    """The backward returned something that is not one gradient per input of the right shape."""


@dataclass
class CaseResult:
    """How one test case went: the relative error of each gradient and the finite-difference check."""
    description: str
    rel_errors: dict                  # gradient name -> relative error against tinyres
    finite_differences_passed: bool
    finite_differences_error: float   # largest absolute error against finite differences
    tolerance: float = TOLERANCE

    @property
    def passed(self):
        return self.finite_differences_passed and all(
            error < self.tolerance for error in self.rel_errors.values())


@dataclass
class GradeResult:
    """The grade of one exercise: ``passed``, the case-by-case errors and what went wrong."""
    name: str
    cases: list = field(default_factory=list)
    message: str = ""                 # why grading stopped early ("" when every case ran)

    @property
    def passed(self):
        return bool(self.cases) and not self.message and all(case.passed for case in self.cases)

    @property
    def max_rel_error(self):
        """Largest relative error against tinyres over every case and gradient (nan if none ran)."""
        errors = [error for case in self.cases for error in case.rel_errors.values()]
        return max(errors) if errors else float("nan")

    def __str__(self):
        verdict = "PASS" if self.passed else "FAIL"
        head = f"{verdict}  {self.name:<11}"
        if self.message:
            head += f" {self.message}"
        else:
            head += (f" max relative error {self.max_rel_error:.1e} over {len(self.cases)} cases "
                     f"(needs < {TOLERANCE:.0e})")
        lines = [head]
        for case in self.cases:
            errors = "  ".join(f"{name} {error:.1e}" for name, error in case.rel_errors.items())
            finite = "agree" if case.finite_differences_passed else "DISAGREE"
            mark = "" if case.passed else "   <-- wrong"
            lines.append(f"      {case.description:<50} {errors}   finite differences {finite} "
                         f"(max abs err {case.finite_differences_error:.1e}){mark}")
        return "\n".join(lines)

    def _repr_pretty_(self, printer, cycle):
        printer.text(str(self))


def _as_gradients(answer, exercise, shapes, dtype):
    """The student's answer as one float array per input, or a StudentAnswerError saying why not."""
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
                                     f"expected an array of shape {shape}")
        value = np.asarray(value, dtype=dtype)
        if value.shape != tuple(shape):
            raise StudentAnswerError(f"{function}: {name} has shape {value.shape}, expected {shape} "
                                     "(a gradient has the shape of its input)")
        gradients.append(value)
    return tuple(gradients)


class StudentOp(Function):
    """An autograd op whose forward is the exercise's and whose backward is the student's."""

    @staticmethod
    def forward(ctx, *arrays, exercise, settings, student_backward):
        out, cache = exercise.forward(*arrays, **settings)
        ctx.cache, ctx.exercise, ctx.student_backward = cache, exercise, student_backward
        ctx.shapes = [array.shape for array in arrays]
        return out

    @staticmethod
    def backward(ctx, grad):
        # copies, so an answer that writes into its arguments cannot spoil the next check
        cache = {key: value.copy() if isinstance(value, np.ndarray) else value
                 for key, value in ctx.cache.items()}
        answer = ctx.student_backward(grad.copy(), cache)
        return _as_gradients(answer, ctx.exercise, ctx.shapes, grad.dtype)


def _case_arrays(exercise, shapes, rng):
    arrays = [rng.standard_normal(shape) for shape in shapes]
    for index, name in enumerate(exercise.inputs):
        if name in exercise.needs_positive:  # keep inputs away from a kink
            arrays[index] = np.sign(arrays[index]) * (0.1 + np.abs(arrays[index]))
    return arrays


def grade(name, student_backward, tolerance=TOLERANCE, seed=0, verbose=True):
    """Grade ``student_backward(grad_output, cache)`` for exercise ``name``; returns a GradeResult.

    name: ``"relu"``, ``"max_pool2d"``, ``"conv2d"`` or ``"batch_norm"``.
    Prints the verdict and the per-case errors unless ``verbose=False``.
    """
    if name not in EXERCISES:
        raise ValueError(f"grade: unknown exercise {name!r}; expected one of {sorted(EXERCISES)}")
    if not callable(student_backward):
        raise TypeError(f"grade: student_backward must be a function "
                        f"backward(grad_output, cache), got {type(student_backward).__name__}")
    exercise = EXERCISES[name]
    result = GradeResult(name)
    rng = np.random.default_rng(seed)

    def student_op(*inputs, settings):
        return StudentOp.apply(*inputs, exercise=exercise, settings=settings,
                               student_backward=student_backward)

    with use_backend("numpy"):
        for description, shapes, settings in exercise.cases:
            arrays = _case_arrays(exercise, shapes, rng)
            out, _ = exercise.forward(*arrays, **settings)
            grad_output = rng.standard_normal(out.shape)
            inputs = [tensor(array.copy(), requires_grad=True) for array in arrays]
            try:
                student_op(*inputs, settings=settings).backward(grad_output)
            except NotImplementedError:
                result.message = (f"not implemented yet ({name}_backward raised "
                                  "NotImplementedError)")
                break
            except StudentAnswerError as error:
                result.message = str(error)
                break
            except Exception as error:  # the student's code crashed: say where, do not raise
                result.message = (f"{name}_backward raised {type(error).__name__}: {error} "
                                  f"(case {description})")
                break
            references = [tensor(array.copy(), requires_grad=True) for array in arrays]
            exercise.tinyres_op(*references, **settings).backward(grad_output)
            errors = {gradient: rel_error(mine.grad, reference.grad)
                      for gradient, mine, reference in zip(exercise.gradients, inputs, references)}
            report = gradcheck(lambda *ts, settings=settings: student_op(*ts, settings=settings),
                               [tensor(array.copy(), requires_grad=True) for array in arrays],
                               raise_exception=False)
            result.cases.append(CaseResult(
                description, errors, report.passed,
                max(check.max_abs_error for check in report.inputs), tolerance))
    if verbose:
        print(result)
    return result


def grade_all(answers, verbose=True):
    """Grade several exercises: ``answers`` maps exercise name -> backward; returns name -> GradeResult."""
    return {name: grade(name, backward, verbose=verbose) for name, backward in answers.items()}
