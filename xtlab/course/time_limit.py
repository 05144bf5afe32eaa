"""Run learner code under a time limit it cannot catch, so an endless loop gives a verdict instead of a hung kernel.

In the main thread on Unix (a Jupyter kernel, pytest) the limit is enforced in three strikes:

1. at the limit a SIGALRM raises :class:`TimeLimitExceeded` wherever the interpreter is;
2. from then on the alarm fires again every ``_REFIRE_S`` and raises again while learner code is running
   (a ``time.sleep`` or a blocking call inside ``except BaseException: pass``);
3. from then on a trace function raises again at every line and every call of learner code, so a loop that
   catches ``BaseException`` and carries on is interrupted at its next line, its handler's lines included.

"Learner code" is code from outside the installed libraries and xtlab (a notebook cell, a test file): library
and xtlab code on the way out (a ``finally`` that closes processes) runs undisturbed. The trace is installed
only once a limit has run out, so the normal path costs one timer per call. Limits nest: a checker's whole run
can have a limit, and each call of learner code inside it a shorter one; the alarm fires at the nearest.

A call that swallowed the limit and returned anyway still raises: a value that came back late is not an answer.

Outside the main thread the call runs in a daemon thread that is abandoned at the limit (it may run on); a
C-level loop that never returns to the interpreter
(``sum(itertools.count())``) cannot be interrupted in-process by any of these.
"""

from __future__ import annotations

import os
import signal
import sys
import sysconfig
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# After the limit, the alarm fires again at this interval, so code that swallows the first
# interruption (a bare ``except:`` inside a loop) is interrupted again until it lets go.
_REFIRE_S = 0.05


class TimeLimitExceeded(BaseException):
    """Learner code ran past its limit. A BaseException, so ``except Exception`` in that code cannot swallow it.

    Attributes:
        seconds: the limit that ran out (``None`` when raised by the interpreter-level strikes).
    """

    def __init__(self, seconds: float | None = None):
        super().__init__(f"did not finish within {seconds:g} s" if seconds is not None else "time limit")
        self.seconds = seconds


@dataclass(eq=False)
class _Level:
    seconds: float
    deadline: float
    expired: bool = False


class _State:
    levels: list[_Level] = []
    previous_handler: Any = None
    previous_trace: Any = None
    tracing = False
    traced_frames: list = []


# --- which code is the learner's -------------------------------------------------------------------------------

def _trusted_dirs() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    dirs = {paths.get(key) for key in ("stdlib", "platstdlib", "purelib", "platlib")}
    dirs |= {os.path.dirname(os.__file__), os.path.dirname(os.path.dirname(__file__))}  # stdlib, xtlab
    return tuple(os.path.realpath(d) + os.sep for d in dirs if d)


_TRUSTED = _trusted_dirs()
_judged_by_file: dict[str, bool] = {}


def is_learner_file(filename: str) -> bool:
    """True for code that is judged (a notebook cell, a test file), False for libraries, xtlab and the stdlib."""
    known = _judged_by_file.get(filename)
    if known is None:
        if filename.startswith("<frozen") or filename.startswith("<built"):
            known = False
        else:
            known = not os.path.realpath(filename).startswith(_TRUSTED)
        _judged_by_file[filename] = known
    return known


# --- the strikes ---------------------------------------------------------------------------------------------

def _expired() -> bool:
    return any(level.expired for level in _State.levels)


def limit_expired() -> bool:
    """True while an enclosing limit has run out (a caller that caught TimeLimitExceeded must let it go on)."""
    return _expired()


def _tracer(frame, event, arg):
    if not _expired():
        return None
    if event in ("call", "line") and is_learner_file(frame.f_code.co_filename):
        raise TimeLimitExceeded
    return _tracer


def _start_tracing(frame) -> None:
    if _State.tracing:
        return
    _State.tracing = True
    _State.previous_trace = sys.gettrace()
    sys.settrace(_tracer)
    while frame is not None:  # frames already running get their line events from here on
        if is_learner_file(frame.f_code.co_filename):
            frame.f_trace = _tracer
            _State.traced_frames.append(frame)
        frame = frame.f_back


def _stop_tracing() -> None:
    if not _State.tracing:
        return
    sys.settrace(_State.previous_trace)
    for frame in _State.traced_frames:
        frame.f_trace = None
    _State.traced_frames.clear()
    _State.previous_trace = None
    _State.tracing = False


def _on_alarm(signum, frame) -> None:
    if not _State.levels:
        return
    now = time.monotonic()
    newly = False
    for level in _State.levels:
        if not level.expired and level.deadline <= now + 1e-3:
            level.expired = newly = True
    if not _expired():
        _rearm()
        return
    if frame is not None and frame.f_code.co_filename == __file__:
        _start_tracing(frame)  # leaving a limit right now: run_with_time_limit sees the expired level itself
        return
    if newly:
        _start_tracing(frame)
        raise TimeLimitExceeded
    if frame is not None and is_learner_file(frame.f_code.co_filename):
        raise TimeLimitExceeded
    # library or xtlab code (cleaning up on the way out): left alone; the trace strikes in learner code again


def _rearm() -> None:
    if not _State.levels:
        signal.setitimer(signal.ITIMER_REAL, 0)
    elif _expired():
        signal.setitimer(signal.ITIMER_REAL, _REFIRE_S, _REFIRE_S)
    else:
        first = min(level.deadline for level in _State.levels) - time.monotonic()
        signal.setitimer(signal.ITIMER_REAL, max(first, 1e-4), _REFIRE_S)


def _alarm_usable() -> bool:
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


def run_with_time_limit(function: Callable[..., Any], seconds: float, *args: Any, **kwargs: Any) -> Any:
    """``function(*args, **kwargs)``, or ``TimeLimitExceeded`` once it has run ``seconds``.

    In the main thread on Unix the call is interrupted (see the module's text: the limit cannot be swallowed by
    learner code). Elsewhere the call runs in a daemon thread that is abandoned at the limit: the caller gets its
    answer, the thread may run on. Inside another limit the nearer deadline applies; when the outer limit runs
    out first, the TimeLimitExceeded raised here belongs to it (see :func:`limit_expired`).
    """
    if not seconds > 0:
        raise ValueError(f"seconds must be > 0, but got {seconds}")
    if not _alarm_usable():
        return _run_in_thread(function, seconds, args, kwargs)
    level = _Level(seconds, time.monotonic() + seconds)
    outermost = not _State.levels
    if outermost:
        _State.previous_handler = signal.signal(signal.SIGALRM, _on_alarm)
    _State.levels.append(level)
    _rearm()
    struck: TimeLimitExceeded | None = None
    try:
        value = function(*args, **kwargs)
    except TimeLimitExceeded as err:
        late, struck = True, err
    else:
        late = level.expired  # the code swallowed the limit and returned: too late all the same
    finally:
        _State.levels = [other for other in _State.levels if other is not level]
        if not _expired():
            _stop_tracing()
        if outermost:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, _State.previous_handler)
            _State.previous_handler = None
        else:
            _rearm()
    if late:
        outer = next((lvl for lvl in _State.levels if lvl.expired), None)
        limit = TimeLimitExceeded(outer.seconds if outer is not None else seconds)
        # keep where it was struck: the verdict names the learner's code that ran too long
        raise limit.with_traceback(struck.__traceback__ if struck is not None else None)
    return value


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
        # abandoned: an asynchronous exception sent into it (PyThreadState_SetAsyncExc) would stall the main
        # thread's own limits while the worker sleeps in C, so none is sent
        raise TimeLimitExceeded(seconds)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]

