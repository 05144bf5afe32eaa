"""The exercise framework: a checker never raises, whatever the learner's code does."""

import random

import numpy as np
import pytest
import torch

from xtlab.course import NOT_YET, PASS, TRY_AGAIN, Exercise, ExerciseSet, Mistake, Verdict, call, describe


def check_total(total) -> Verdict:
    xs = [1, 2, 3]
    answer = call(total, xs)
    if answer != 6:
        return Verdict.make_try_again(f"total([1, 2, 3]) returned {describe(answer)}, expected 6", "add the items")
    return Verdict.make_pass("total([1, 2, 3]) == 6")


TOTAL = Exercise("total", "total(xs): the sum of xs", check_total, sum, time_limit_s=0.5)


def stub(xs):
    raise NotImplementedError()


def test_reference_passes_and_a_stub_is_not_yet():
    assert TOTAL.check(sum).status == PASS
    verdict = TOTAL.check(stub)
    assert verdict.status == NOT_YET and "total(xs): the sum of xs" in str(verdict)
    assert TOTAL.check(None).status == NOT_YET and TOTAL.check(...).status == NOT_YET


def test_an_exception_names_the_error_and_the_line():
    def broken(xs):
        return xs[10]

    verdict = TOTAL.check(broken)
    assert verdict.status == TRY_AGAIN
    assert "IndexError" in verdict.checked and "return xs[10]" in verdict.checked


@pytest.mark.parametrize("answer", [
    lambda xs: 1 / 0,
    lambda xs: exec("raise SystemExit(3)"),
    lambda xs: 10**400,
    lambda xs: np.arange(3),
    lambda xs: (x for x in xs),
    lambda xs: float("nan"),
    "a string",
    42,
])
def test_odd_answers_get_a_verdict_never_an_exception(answer):
    verdict = TOTAL.check(answer)
    assert isinstance(verdict, Verdict) and verdict.status == TRY_AGAIN


def test_an_endless_loop_gets_a_verdict_within_the_limit():
    def forever(xs):
        while True:
            try:
                pass
            except Exception:  # learner code that swallows errors cannot swallow the time limit
                pass

    verdict = TOTAL.check(forever)
    assert verdict.status == TRY_AGAIN and "did not finish within 0.5 s" in verdict.checked


def test_learner_code_gets_copies_and_global_random_state_is_kept():
    original = [1, 2, 3]

    def mutating(xs):
        xs.clear()
        random.random(), np.random.rand(), torch.rand(1)
        return 6

    states = random.getstate(), np.random.get_state()[1].copy(), torch.get_rng_state()
    seen = []
    Exercise("spy", "spy", lambda answer: (seen.append(call(answer, original)), Verdict.make_pass("ok"))[1],
             None).check(mutating)
    assert original == [1, 2, 3] and seen == [6]
    assert random.getstate() == states[0] and np.array_equal(np.random.get_state()[1], states[1])
    assert torch.equal(torch.get_rng_state(), states[2])


def test_a_broken_checker_still_returns_a_verdict():
    exercise = Exercise("x", "x", lambda answer: answer.missing_attribute, None)
    assert exercise.check(lambda: 1).status == TRY_AGAIN
    assert Exercise("x", "x", lambda answer: "not a verdict", None).check(lambda: 1).status == TRY_AGAIN


def test_exercise_set_checks_by_name_and_refuses_duplicates():
    exercises = ExerciseSet(TOTAL)
    assert exercises.check("total", sum).passed
    assert exercises.check("totl", sum).status == TRY_AGAIN and "total" in exercises.check("totl", sum).hint
    with pytest.raises(ValueError, match="total"):
        ExerciseSet(TOTAL, TOTAL)


def test_verdict_text_starts_with_its_status():
    assert str(Verdict.make_pass("done")) == "PASS: done"
    assert str(Verdict.make_try_again("wrong", "look here")) == "TRY AGAIN: wrong\nHint: look here"
    assert repr(Verdict.make_not_yet("stub")) == "NOT YET: stub"
    with pytest.raises(ValueError, match="MAYBE"):
        Verdict("MAYBE", "x")
    assert Mistake("m", None, "x").says == "x"
