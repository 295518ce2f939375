"""What the lessons in ``notebooks/`` use: the assignment's exercises and grader, and the pictures
(``pictures`` re-exports them from :mod:`tinyres.viz`; this package imports viz, never the reverse).

    from tinyres.lessons import grade, exercises, pictures
    out, cache = exercises.relu_forward(x)
    grade("relu", relu_backward)              # the report, case by case, with the score
    grade("relu", relu_backward).assert_passed()   # raises AssertionError with the report

The reference solutions and the hidden cases are not part of the package: they live in
the repository's ``course/`` folder, which :mod:`tinyres.lessons.course` reads by path.
"""
from . import exercises, pictures
from .exercises import EXERCISES
from .grade import CaseResult, GradeResult, StudentAnswerError, grade, grade_all

__all__ = ["EXERCISES", "CaseResult", "GradeResult", "StudentAnswerError", "exercises", "grade",
           "grade_all", "pictures"]
