"""Learner code under a time limit: the alarm path (main thread) and the thread path (elsewhere)."""

import signal
import threading
import time

import pytest

from xtlab.course.time_limit import TimeLimitExceeded, run_with_time_limit


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
