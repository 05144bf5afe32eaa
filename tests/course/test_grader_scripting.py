"""The checkers scripted as a grader would: every lab's EXERCISES on its reference and on a stub, read through
the one flag ``verdict.passed`` and ``verdict.status`` (a Verdict has no truth value, nothing callable reads
like the flag)."""

import importlib

import pytest

from xtlab.catalog import LABS
from xtlab.course import NOT_YET, PASS, TRY_AGAIN, Verdict
from xtlab.course.exercise import Exercise, call, expect_type

# seconds per answer (real processes): not scripted here
LAUNCHING = {"attach_reducer", "fix_encoder_decoder", "ddp_settings_for_layer_dropout", "shard_tied_model"}


def stub(*args, **kwargs):
    raise NotImplementedError()


def graded():
    rows = []
    for lab in LABS:
        exercises = importlib.import_module(f"xtlab.labs.{lab.package}").EXERCISES
        rows += [(lab.package, name) for name in exercises if name not in LAUNCHING]
    return rows


@pytest.mark.parametrize(("package", "name"), graded(), ids=lambda v: v)
def test_a_grader_reads_pass_and_not_yet_from_the_flag(package, name):
    exercises = importlib.import_module(f"xtlab.labs.{package}").EXERCISES
    score = {}
    for label, answer in (("reference", exercises[name].reference), ("stub", stub)):
        verdict = exercises.check(name, answer)
        assert isinstance(verdict, Verdict) and isinstance(verdict.passed, bool)
        score[label] = (verdict.passed, verdict.status)
    assert score == {"reference": (True, PASS), "stub": (False, NOT_YET)}


def test_the_flag_is_not_callable_and_a_verdict_has_no_truth_value():
    verdict = Verdict.make_try_again("x")
    assert verdict.passed is False and not callable(verdict.passed)
    assert Verdict.make_pass("x").passed is True and Verdict.make_not_yet("x").passed is False
    with pytest.raises(TypeError, match="passed"):
        bool(verdict)
    assert not [name for name in dir(Verdict) if "pass" in name.lower() and name != "passed"
                and not name.startswith("make_")]


def _decay_checker(answer):
    decay = expect_type(call(answer), (float, int), "the weight decay your `decay` returns")
    return Verdict.make_pass("ok") if decay == 0.05 else Verdict.make_try_again(f"{decay} is not 0.05")


DECAY = Exercise("decay", "decay(): the weight decay", _decay_checker, lambda: 0.05, time_limit_s=1.0)


@pytest.mark.parametrize("answer", [lambda: "0.05", lambda: True, lambda: None, lambda: [0.05]])
def test_a_value_of_the_wrong_type_is_try_again_naming_the_expected_type(answer):
    verdict = DECAY.check(answer)
    assert verdict.status == TRY_AGAIN and "must be float or int" in verdict.checked, str(verdict)


def test_the_right_type_passes():
    assert DECAY.check(lambda: 0.05).passed
