"""Every exercise of every lab: the reference passes, the stub is NOT YET, each kept mistake is caught and named.
(The exercises whose checkers launch real DDP processes are in test_exercises_launching.py.)"""

import pytest

from tests.labs import exercise_checks as check


def test_every_lab_has_exercises_and_each_is_tested_once():
    modules = check.LAB_MODULES.values()
    assert all(len(module.EXERCISES) >= 1 for module in modules)
    assert all(module.check == module.EXERCISES.check for module in modules)
    names = [exercise.name for exercise in check.exercises(False) + check.exercises(True)]
    assert sorted(names) == sorted(exercise.name for exercise in check.ALL_EXERCISES)
    assert check.LAUNCHING <= set(names)


@pytest.mark.parametrize("exercise", check.exercises(False), ids=check.ident)
def test_reference_passes_and_stub_is_not_yet(exercise):
    check.assert_reference_passes_and_stub_is_not_yet(exercise)


@pytest.mark.parametrize("exercise", check.ALL_EXERCISES, ids=check.ident)
def test_at_least_three_realistic_mistakes_are_kept_with_each_exercise(exercise):
    check.assert_mistakes_are_kept(exercise)


@pytest.mark.parametrize(("exercise", "mistake"), check.mistakes(False), ids=check.ident)
def test_each_mistake_is_caught_and_named(exercise, mistake):
    check.assert_mistake_is_caught_and_named(exercise, mistake)


@pytest.mark.parametrize("exercise", check.exercises(False), ids=check.ident)
def test_answers_that_crash_or_are_not_functions_get_a_verdict(exercise):
    check.assert_crashes_and_odd_answers_get_a_verdict(exercise)
