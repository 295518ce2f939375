"""What the lessons in ``notebooks/`` use: the assignment's grader and the pictures.

    from tinyres.lessons import grade, exercises, pictures
    out, cache = exercises.relu_forward(x)
    grade("relu", relu_backward)              # PASS / FAIL with the relative errors

The reference solutions live in :mod:`tinyres.lessons.solutions`.
"""
from . import exercises, pictures
from .exercises import EXERCISES
from .grade import CaseResult, GradeResult, StudentAnswerError, grade, grade_all

__all__ = ["EXERCISES", "CaseResult", "GradeResult", "StudentAnswerError", "exercises", "grade",
           "grade_all", "pictures"]
