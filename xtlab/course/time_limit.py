"""Run learner code under a time limit, so an endless loop gives a verdict instead of a hung kernel."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import Any

# After the limit, the alarm fires again at this interval, so code that swallows the first
# interruption (a bare ``except:`` inside a loop) is interrupted again until it lets go.
_REFIRE_S = 0.05


class TimeLimitExceeded(BaseException):
    """Learner code ran past its limit. A BaseException, so ``except Exception`` in that code cannot swallow it."""


class _Alarm:
    armed = False


def _on_alarm(signum, frame) -> None:
    if _Alarm.armed:
        raise TimeLimitExceeded


def _alarm_usable() -> bool:
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


def run_with_time_limit(function: Callable[..., Any], seconds: float, *args: Any, **kwargs: Any) -> Any:
    """``function(*args, **kwargs)``, or ``TimeLimitExceeded`` once it has run ``seconds``.

    In the main thread on Unix (a Jupyter kernel) a SIGALRM interrupts the call. Elsewhere the call runs in a
    daemon thread that is abandoned at the limit: the caller gets its answer, the thread may run on.
    """
    if seconds <= 0:
        raise ValueError(f"seconds must be > 0, but got {seconds}")
    if not _alarm_usable():
        return _run_in_thread(function, seconds, args, kwargs)
    if _Alarm.armed:  # nested call: the outer limit already applies
        return function(*args, **kwargs)
    previous_handler = signal.signal(signal.SIGALRM, _on_alarm)
    _Alarm.armed = True
    signal.setitimer(signal.ITIMER_REAL, seconds, _REFIRE_S)
    try:
        return function(*args, **kwargs)
    finally:
        _Alarm.armed = False  # first: an alarm that lands from here on does nothing
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous_handler)


def _run_in_thread(function: Callable[..., Any], seconds: float, args: tuple, kwargs: dict) -> Any:
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = function(*args, **kwargs)
        except BaseException as err:  # handed back to the caller below
            outcome["error"] = err

    worker = threading.Thread(target=target, name="xtlab-learner-code", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise TimeLimitExceeded
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
