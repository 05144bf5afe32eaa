"""The course's framework (no widgets): exercises, verdicts, learner code under a time limit, article audits."""

from xtlab.course.audit import CAVEAT, FAILS, HOLDS, ArticleAudit, Claim, verdict_of
from xtlab.course.exercise import Exercise, ExerciseSet, Mistake, call, describe
from xtlab.course.verdict import NOT_YET, PASS, TRY_AGAIN, Verdict

__all__ = [
    "ArticleAudit", "Claim", "verdict_of", "HOLDS", "CAVEAT", "FAILS",
    "Exercise", "ExerciseSet", "Mistake", "Verdict", "call", "describe", "PASS", "NOT_YET", "TRY_AGAIN",
]
