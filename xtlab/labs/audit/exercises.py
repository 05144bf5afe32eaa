"""Lab 06's exercises: an adapter for a model you did not write, and an invariant of your own."""

from xtlab.course import ExerciseSet
from xtlab.labs.audit.adapter_exercise import ADAPTER_EXERCISE
from xtlab.labs.audit.invariant_exercise import INVARIANT_EXERCISE

EXERCISES = ExerciseSet(ADAPTER_EXERCISE, INVARIANT_EXERCISE)
