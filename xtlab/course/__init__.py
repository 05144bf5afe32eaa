"""The course's exercise framework (no widgets): exercises, verdicts, learner code under a time limit."""

from xtlab.course.exercise import Exercise, ExerciseSet, Mistake, call, describe
from xtlab.course.verdict import NOT_YET, PASS, TRY_AGAIN, Verdict

__all__ = ["Exercise", "ExerciseSet", "Mistake", "Verdict", "call", "describe", "PASS", "NOT_YET", "TRY_AGAIN"]
