"""Learner code under a time limit: the alarm path (main thread) and the thread path (elsewhere)."""

import contextlib
import json
import signal
import sys
import threading
import time

import pytest

from xtlab.course import time_limit
from xtlab.course.time_limit import TimeLimitExceeded, is_learner_file, limit_expired, run_with_time_limit


def spin():
    while True:
        pass


def test_main_thread_interrupts_an_endless_loop_and_restores_the_alarm():
    before = signal.getsignal(signal.SIGALRM)
    start = time.perf_counter()
    with pytest.raises(TimeLimitExceeded):
        run_with_time_limit(spin, 0.2)
    assert time.perf_counter() - start < 2
    assert signal.getsignal(signal.SIGALRM) == before
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_values_and_errors_pass_through():
    assert run_with_time_limit(lambda a, b=1: a + b, 1.0, 2, b=3) == 5
    with pytest.raises(KeyError):
        run_with_time_limit(lambda: {}["x"], 1.0)


def test_outside_the_main_thread_a_worker_thread_is_abandoned_at_the_limit():
    outcome = {}

    def in_thread():
        try:
            run_with_time_limit(lambda: time.sleep(5), 0.2)
        except TimeLimitExceeded:
            outcome["timed_out"] = True
        outcome["value"] = run_with_time_limit(lambda: 7, 1.0)

    worker = threading.Thread(target=in_thread)
    worker.start()
    worker.join(3)
    assert outcome == {"timed_out": True, "value": 7}


def test_a_bad_limit_is_refused():
    with pytest.raises(ValueError, match="-1"):
        run_with_time_limit(spin, -1)


def swallow_forever():
    while True:
        try:
            spin()
        except BaseException:
            pass


def swallow_then_return():
    try:
        spin()
    except BaseException:
        return "too late"


def assert_nothing_left(trace_before, handler_before):
    assert sys.gettrace() is trace_before
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    assert signal.getsignal(signal.SIGALRM) == handler_before


@pytest.mark.parametrize("code", [swallow_forever, swallow_then_return], ids=["loops", "returns"])
def test_code_that_catches_base_exception_cannot_swallow_the_limit(code):
    trace_before, handler_before = sys.gettrace(), signal.getsignal(signal.SIGALRM)
    start = time.perf_counter()
    with pytest.raises(TimeLimitExceeded) as raised:
        run_with_time_limit(code, 0.2)
    assert time.perf_counter() - start < 2
    assert raised.value.seconds == 0.2
    assert_nothing_left(trace_before, handler_before)


def test_a_swallowing_sleep_is_interrupted_again():
    def sleeper():
        while True:
            try:
                time.sleep(10)
            except BaseException:
                pass

    start = time.perf_counter()
    with pytest.raises(TimeLimitExceeded):
        run_with_time_limit(sleeper, 0.2)
    assert time.perf_counter() - start < 2


def test_limits_nest_and_the_outer_one_is_told_apart():
    def inner_runs_out():
        with pytest.raises(TimeLimitExceeded):
            run_with_time_limit(spin, 0.1)
        assert not limit_expired()  # the inner limit ran out, the outer one did not
        return "outer goes on"

    assert run_with_time_limit(inner_runs_out, 2.0) == "outer goes on"

    def outer_runs_out_inside_a_long_inner_limit():
        try:
            run_with_time_limit(swallow_forever, 10.0)
        except TimeLimitExceeded:
            assert limit_expired()  # it belongs to the outer limit
            raise

    start = time.perf_counter()
    with pytest.raises(TimeLimitExceeded) as raised:
        run_with_time_limit(outer_runs_out_inside_a_long_inner_limit, 0.2)
    assert raised.value.seconds == 0.2 and time.perf_counter() - start < 2
    assert not limit_expired()


def test_library_code_cleaning_up_after_the_limit_is_not_interrupted():
    cleaned = []

    def with_cleanup():
        with contextlib.ExitStack() as stack:
            # library code (ExitStack, json) cleaning up once the limit has struck runs to the end
            stack.callback(cleaned.extend, map(json.dumps, range(20000)))
            swallow_forever()

    with pytest.raises(TimeLimitExceeded):
        run_with_time_limit(with_cleanup, 0.1)
    assert len(cleaned) == 20000


def test_an_existing_trace_function_is_put_back():
    calls = []

    def tracer(frame, event, arg):
        calls.append(event)
        return None

    sys.settrace(tracer)
    try:
        with pytest.raises(TimeLimitExceeded):
            run_with_time_limit(swallow_forever, 0.1)
        assert sys.gettrace() is tracer
    finally:
        sys.settrace(None)


def test_the_normal_path_is_fast():
    start = time.perf_counter()
    for _ in range(2000):
        run_with_time_limit(abs, 1.0, -1)
    assert (time.perf_counter() - start) / 2000 < 1e-3  # well under a millisecond per call


def test_learner_files_are_told_from_library_files():
    assert is_learner_file(__file__)
    assert not is_learner_file(json.__file__)
    assert not is_learner_file(pytest.__file__)
    assert not is_learner_file(time_limit.__file__)
    assert is_learner_file("<ipython-input-3-abc>") and is_learner_file("/tmp/ipykernel_1/123.py")
