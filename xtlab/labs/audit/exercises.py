"""Lab 06's exercises: an adapter for a model you did not write, an invariant of your own, and an audit of a model
the notebook never showed."""

from xtlab.course import ExerciseSet
from xtlab.labs.audit.adapter_exercise import ADAPTER_EXERCISE
from xtlab.labs.audit.hidden_model_exercise import AUDIT_UNKNOWN_EXERCISE
from xtlab.labs.audit.invariant_exercise import INVARIANT_EXERCISE

EXERCISES = ExerciseSet(ADAPTER_EXERCISE, INVARIANT_EXERCISE, AUDIT_UNKNOWN_EXERCISE)
