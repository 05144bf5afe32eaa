"""The exercises whose checkers run real 2-process DDP (seconds per answer): same contract as test_exercises.py."""

import pytest

from tests.labs import exercise_checks as check

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("exercise", check.exercises(True), ids=check.ident)
def test_reference_passes_and_stub_is_not_yet(exercise):
    check.assert_reference_passes_and_stub_is_not_yet(exercise)


@pytest.mark.parametrize(("exercise", "mistake"), check.mistakes(True), ids=check.ident)
def test_each_mistake_is_caught_and_named(exercise, mistake):
    check.assert_mistake_is_caught_and_named(exercise, mistake)


@pytest.mark.parametrize("exercise", check.exercises(True), ids=check.ident)
def test_answers_that_crash_or_are_not_functions_get_a_verdict(exercise):
    check.assert_crashes_and_odd_answers_get_a_verdict(exercise)
