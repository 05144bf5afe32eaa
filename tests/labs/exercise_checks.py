"""What every exercise must do, shared by the two exercise test modules (one for the exercises whose checkers
launch real DDP processes, so the two run on different workers)."""

from __future__ import annotations

import importlib

from xtlab.catalog import LABS
from xtlab.course import NOT_YET, PASS, TRY_AGAIN, Exercise

LAB_MODULES = {lab.package: importlib.import_module(f"xtlab.labs.{lab.package}") for lab in LABS}
# checkers that launch real processes (DDP) take seconds per answer
LAUNCHING = {"attach_reducer", "fix_encoder_decoder", "ddp_settings_for_layer_dropout", "shard_tied_model"}
ALL_EXERCISES = [exercise for module in LAB_MODULES.values() for exercise in module.EXERCISES.values()]


def exercises(launching: bool) -> list[Exercise]:
    return [exercise for exercise in ALL_EXERCISES if (exercise.name in LAUNCHING) == launching]


def mistakes(launching: bool) -> list[tuple]:
    return [(exercise, mistake) for exercise in exercises(launching) for mistake in exercise.mistakes]


def ident(value) -> str:
    if isinstance(value, Exercise):
        return value.name
    return getattr(value, "description", None) or str(value)


def stub(*args, **kwargs):
    raise NotImplementedError()


def assert_reference_passes_and_stub_is_not_yet(exercise: Exercise) -> None:
    assert exercise.check(exercise.reference).status == PASS
    verdict = exercise.check(stub)
    assert verdict.status == NOT_YET and exercise.name in str(verdict)


def assert_mistakes_are_kept(exercise: Exercise) -> None:
    assert len(exercise.mistakes) >= 3
    assert len({mistake.says for mistake in exercise.mistakes}) == len(exercise.mistakes)


def assert_mistake_is_caught_and_named(exercise: Exercise, mistake) -> None:
    verdict = exercise.check(mistake.answer)
    assert verdict.status == TRY_AGAIN, f"{mistake.description}: {verdict}"
    assert mistake.says in str(verdict), f"{mistake.description}: {verdict}"


def assert_crashes_and_odd_answers_get_a_verdict(exercise: Exercise) -> None:
    def crash(*args, **kwargs):
        return 1 / 0

    crashed = exercise.check(crash)
    assert crashed.status == TRY_AGAIN and "ZeroDivisionError" in crashed.checked
    assert exercise.check("not a function").status == TRY_AGAIN
    assert exercise.check(lambda *args, **kwargs: 10**400).status == TRY_AGAIN
