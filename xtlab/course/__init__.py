"""The course's framework (no widgets): exercises, verdicts, learner code under a time limit, mechanism checks,
the articles' pages and their audits, and which edition is running."""

from xtlab.course.articles import Article, article
from xtlab.course.audit import (
    FAILS,
    HOLDS,
    RULES,
    UNSTATED,
    VERDICTS,
    ArticleAudit,
    Claim,
    VerdictPrediction,
    forget_verdicts,
    rules_text,
    verdict_of,
)
from xtlab.course.edition import answers_shown, show_answers
from xtlab.course.exercise import (
    Exercise,
    ExerciseSet,
    LearnerCodeFailed,
    Mistake,
    call,
    describe,
    expect_type,
)
from xtlab.course.mechanism import (
    CallCounter,
    Case,
    Untouched,
    case_failed,
    compare_gradients,
    compare_values,
    global_rng_watch,
    gradients,
    seeded_generator,
    show_number,
)
from xtlab.course.verdict import NOT_YET, PASS, TRY_AGAIN, Verdict

__all__ = [
    "Article", "article",
    "ArticleAudit", "Claim", "verdict_of", "VerdictPrediction", "forget_verdicts", "rules_text",
    "HOLDS", "UNSTATED", "FAILS",
    "VERDICTS", "RULES",
    "answers_shown", "show_answers",
    "Exercise", "ExerciseSet", "LearnerCodeFailed", "Mistake", "Verdict", "call", "describe", "expect_type",
    "PASS", "NOT_YET", "TRY_AGAIN",
    "Case", "case_failed", "seeded_generator", "show_number", "compare_values", "gradients", "compare_gradients",
    "CallCounter", "Untouched", "global_rng_watch",
]
