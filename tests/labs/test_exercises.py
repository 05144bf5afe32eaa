"""Every exercise of every lab: the reference passes, the stub is NOT YET, each kept mistake is caught and named."""

import importlib

import pytest

from xtlab.catalog import LABS
from xtlab.course import NOT_YET, PASS, TRY_AGAIN, Exercise

LAB_MODULES = {lab.package: importlib.import_module(f"xtlab.labs.{lab.package}") for lab in LABS}
EXERCISES = [(package, exercise) for package, module in LAB_MODULES.items() for exercise in module.EXERCISES.values()]
MISTAKES = [(package, exercise, mistake) for package, exercise in EXERCISES for mistake in exercise.mistakes]


def ident(value):
    if isinstance(value, Exercise):
        return value.name
    return getattr(value, "description", None) or str(value)


def stub(*args, **kwargs):
    raise NotImplementedError()


def test_every_lab_has_exercises():
    assert all(len(module.EXERCISES) >= 1 for module in LAB_MODULES.values())
    assert all(module.check == module.EXERCISES.check for module in LAB_MODULES.values())


@pytest.mark.parametrize(("package", "exercise"), EXERCISES, ids=ident)
def test_reference_passes_and_stub_is_not_yet(package, exercise):
    assert exercise.check(exercise.reference).status == PASS
    verdict = exercise.check(stub)
    assert verdict.status == NOT_YET and exercise.name in str(verdict)


@pytest.mark.parametrize(("package", "exercise"), EXERCISES, ids=ident)
def test_at_least_two_realistic_mistakes_are_kept_with_each_exercise(package, exercise):
    assert len(exercise.mistakes) >= 2
    assert len({mistake.says for mistake in exercise.mistakes}) == len(exercise.mistakes)


@pytest.mark.parametrize(("package", "exercise", "mistake"), MISTAKES, ids=ident)
def test_each_mistake_is_caught_and_named(package, exercise, mistake):
    verdict = exercise.check(mistake.answer)
    assert verdict.status == TRY_AGAIN, f"{mistake.description}: {verdict}"
    assert mistake.says in str(verdict), f"{mistake.description}: {verdict}"


@pytest.mark.parametrize(("package", "exercise"), EXERCISES, ids=ident)
def test_answers_that_crash_or_are_not_functions_get_a_verdict(package, exercise):
    def crash(*args, **kwargs):
        return 1 / 0

    crashed = exercise.check(crash)
    assert crashed.status == TRY_AGAIN and "ZeroDivisionError" in crashed.checked
    assert exercise.check("not a function").status == TRY_AGAIN
    assert exercise.check(lambda *args, **kwargs: 10**400).status == TRY_AGAIN
