"""Hostile answers to every exercise of every lab: none hangs a checker, none PASSes.

The seven shapes that hung checkers on main (issue 39): an endless generator returned; an object whose
``__eq__``, ``__deepcopy__``, ``__len__``, ``__iter__`` or ``__bool__`` never returns; a loop that catches
``BaseException`` and so swallows the time limit. A few more of the same family ride along (``__ne__``,
``__repr__``, ``__hash__``, a swallowing ``__eq__``, an exception whose message never prints, a value returned
after swallowing the limit). Each runs against every exercise whose checker does not launch processes
(the launching ones take seconds per answer and are covered through the same framework path), with the call
limit cut to 0.3 s and the whole check to 1 s so the file stays quick.
"""

from __future__ import annotations

import dataclasses
import signal
import sys
import time

import pytest

from tests.labs import exercise_checks as check
from xtlab.course import NOT_YET, PASS, TRY_AGAIN

CALL_LIMIT_S, CHECK_LIMIT_S = 0.3, 1.0
SLACK_S = 3.0  # a loaded machine: the verdict must come within the whole-check limit plus this


def forever():
    while True:
        pass


def endless():
    while True:
        yield 1


class EqForever:
    __hash__ = object.__hash__

    def __eq__(self, other):
        forever()


class NeForever:
    def __ne__(self, other):
        forever()


class DeepcopyForever:
    def __deepcopy__(self, memo):
        forever()


class LenForever:
    def __len__(self):
        forever()


class IterForever:
    def __iter__(self):
        forever()


class BoolForever:
    def __bool__(self):
        forever()


class ReprForever:
    def __repr__(self):
        forever()


class HashForever:
    def __hash__(self):
        forever()


class EqSwallows:
    __hash__ = object.__hash__

    def __eq__(self, other):
        while True:
            try:
                forever()
            except BaseException:
                pass


class MessageForever(Exception):
    def __str__(self):
        forever()


def swallows_the_limit(*args, **kwargs):
    while True:
        try:
            forever()
        except BaseException:
            pass


def swallows_then_returns(*args, **kwargs):
    try:
        forever()
    except BaseException:
        return 0.0


def raises_unprintable(*args, **kwargs):
    raise MessageForever()


def returning(make):
    def answer(*args, **kwargs):
        return make()
    answer.__name__ = f"returns_{getattr(make, '__name__', 'value')}"
    return answer


SEVEN_SHAPES = {
    "endless generator returned": returning(endless),
    "__eq__ never returns": returning(EqForever),
    "__deepcopy__ never returns": returning(DeepcopyForever),
    "__len__ never returns": returning(LenForever),
    "__iter__ never returns": returning(IterForever),
    "__bool__ never returns": returning(BoolForever),
    "loop catches BaseException": swallows_the_limit,
}
MORE_SHAPES = {
    "__ne__ never returns": returning(NeForever),
    "__repr__ never returns": returning(ReprForever),
    "__hash__ never returns": returning(HashForever),
    "__eq__ swallows the limit": returning(EqSwallows),
    "swallows the limit, then returns": swallows_then_returns,
    "error message never prints": raises_unprintable,
}
SHAPES = {**SEVEN_SHAPES, **MORE_SHAPES}


def quick(exercise):
    return dataclasses.replace(exercise, time_limit_s=CALL_LIMIT_S, check_time_limit_s=CHECK_LIMIT_S)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("exercise", check.exercises(False), ids=check.ident)
def test_a_hostile_answer_gets_try_again_in_time(exercise, shape):
    trace_before, handler_before = sys.gettrace(), signal.getsignal(signal.SIGALRM)
    start = time.perf_counter()
    verdict = quick(exercise).check(SHAPES[shape])
    elapsed = time.perf_counter() - start
    assert verdict.status == TRY_AGAIN, f"{shape}: {verdict}"
    assert elapsed < CHECK_LIMIT_S + SLACK_S, f"{shape}: {elapsed:.1f} s"
    if elapsed >= CALL_LIMIT_S:  # it may have run into a limit: the verdict names what went wrong (a cold first
        # check can take longer than the call limit and still end on what the answer returned)
        assert ("did not finish" in str(verdict) or "raised" in verdict.checked
                or "returned" in verdict.checked), str(verdict)
    # nothing left behind: no trace function, no alarm, the handler put back
    assert sys.gettrace() is trace_before
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    assert signal.getsignal(signal.SIGALRM) == handler_before


def test_after_a_hostile_answer_the_reference_still_passes_and_nothing_is_left_behind():
    exercise = min(check.exercises(False), key=lambda e: len(e.name))
    assert quick(exercise).check(swallows_the_limit).status == TRY_AGAIN
    assert exercise.check(exercise.reference).status == PASS
    assert exercise.check(check.stub).status == NOT_YET
