"""Checked exercises: one ``Exercise`` record per task, a checker that never raises into the notebook.

A lab writes a checker as straight-line code: it calls the learner's answer through :func:`call` (arguments
deep-copied, time-limited, failures turned into verdicts) and returns a :class:`Verdict`. ``Exercise.check``
wraps it so that, whatever the learner's code does, the notebook gets a verdict:

- a stub (``raise NotImplementedError``, ``None``, ``...``) gives ``NOT YET`` and says what to write;
- an exception in the learner's code gives ``TRY AGAIN: ... raised ...`` with the line it came from;
- code that runs past the time limit gives ``TRY AGAIN`` instead of a hung kernel, even code that catches
  ``BaseException`` (see :mod:`xtlab.course.time_limit`); the whole check runs under a limit too, so a returned
  value that never finishes being compared, iterated, copied or tested for truth is ``TRY AGAIN`` naming the
  method that ran too long;
- a value of the wrong type is ``TRY AGAIN`` naming the expected type, when the checker asks
  :func:`expect_type`;
- global random state (Python, NumPy, torch) is the same after a check as before it.
"""

from __future__ import annotations

import contextvars
import copy
import linecache
import os
import random
import traceback
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from xtlab.course.time_limit import TimeLimitExceeded, is_learner_file, limit_expired, run_with_time_limit
from xtlab.course.verdict import Verdict

DEFAULT_TIME_LIMIT_S = 10.0
# a whole check (the checker's own work and every call of learner code in it) may take this many call limits
CHECK_LIMIT_CALLS = 6
_REPR_LIMIT_S = 0.5


@dataclass(frozen=True)
class Mistake:
    """A realistic wrong answer, kept with its exercise so a test proves the checker catches it.

    Attributes:
        description: the mistake in a few words ("rows and columns swapped").
        answer: the wrong answer, as a learner would write it.
        says: words the verdict must contain, so the message names the mistake.
    """

    description: str
    answer: Any
    says: str


@dataclass(frozen=True)
class Exercise:
    """One checked exercise.

    Attributes:
        name: what the learner writes (a function or class name), also the key in the lab's ``EXERCISES``.
        prompt: what to write, in one or two sentences: shown while the answer is still a stub.
        checker: ``checker(answer) -> Verdict``; calls learner code through :func:`call`.
        reference: the reference answer (``checker(reference)`` passes).
        mistakes: realistic wrong answers and the words their verdicts must contain.
        time_limit_s: how long one call of the learner's code may run.
        check_time_limit_s: how long the whole check may run (default ``CHECK_LIMIT_CALLS * time_limit_s``): it
            bounds what the checker does with returned values (compare, iterate, copy, truth value).
    """

    name: str
    prompt: str
    checker: Callable[[Any], Verdict]
    reference: Any
    mistakes: tuple[Mistake, ...] = ()
    time_limit_s: float = DEFAULT_TIME_LIMIT_S
    check_time_limit_s: float | None = None

    @property
    def whole_check_limit_s(self) -> float:
        """How long one whole check may run."""
        if self.check_time_limit_s is not None:
            return self.check_time_limit_s
        return CHECK_LIMIT_CALLS * self.time_limit_s

    def check(self, answer: Any) -> Verdict:
        """Judge ``answer``; never raises (except for a KeyboardInterrupt from the person at the keyboard)."""
        if _is_stub_value(answer):
            return self._not_yet(f"`{self.name}` is not written yet")
        token = _current.set(self)
        limit = self.whole_check_limit_s
        try:
            with _global_random_state_kept():
                verdict = run_with_time_limit(self.checker, limit, answer)
        except _Stub:
            return self._not_yet(f"`{self.name}` still raises NotImplementedError")
        except LearnerCodeFailed as failure:
            return Verdict.make_try_again(failure.checked, failure.hint)
        except TimeLimitExceeded as err:
            return self._too_long(err, limit)
        except Exception as err:  # the checker could not make sense of the answer: say so, never crash the cell
            return Verdict.make_try_again(
                f"the checker could not judge your `{self.name}` ({type(err).__name__}: {_safe_text(err)})",
                "check what your answer returns: its type and shape should match the exercise's description",
            )
        finally:
            _current.reset(token)
        if not isinstance(verdict, Verdict):
            return Verdict.make_try_again(
                f"the checker of `{self.name}` returned {type(verdict).__name__}, not a verdict")
        return verdict

    def _too_long(self, err: TimeLimitExceeded, limit: float) -> Verdict:
        culprit = _learner_frame(err)
        if culprit is None:
            return Verdict.make_try_again(
                f"checking your `{self.name}` did not finish within {limit:g} s",
                "your answer returned something that takes very long to examine: return plain values "
                "(tensors, numbers, lists, dicts) of the size the exercise asks for")
        return Verdict.make_try_again(
            f"checking your `{self.name}` did not finish within {limit:g} s: {culprit} took too long "
            f"while the checker examined what your code returned",
            f"look at {culprit}: a loop that never ends, or an endless generator returned where a list or "
            f"tensor is expected; return plain values (tensors, numbers, lists, dicts)")

    def _not_yet(self, checked: str) -> Verdict:
        return Verdict.make_not_yet(f"{checked}: replace the `raise NotImplementedError()` line in its cell.",
                               f"write {self.prompt}")


class ExerciseSet(Mapping[str, Exercise]):
    """A lab's exercises by name, with ``check(name, answer)`` for the notebook."""

    def __init__(self, *exercises: Exercise):
        names = [exercise.name for exercise in exercises]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"exercise names must be unique, but {duplicates} appear more than once")
        self._by_name = {exercise.name: exercise for exercise in exercises}

    def __getitem__(self, name: str) -> Exercise:
        return self._by_name[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_name)

    def __len__(self) -> int:
        return len(self._by_name)

    def check(self, name: str, answer: Any) -> Verdict:
        """The verdict on ``answer`` to exercise ``name``."""
        if name not in self._by_name:
            return Verdict.make_try_again(f"there is no exercise named {name!r} in this lab",
                                     f"the exercises are {sorted(self._by_name)}")
        return self._by_name[name].check(answer)

    def __repr__(self) -> str:
        return f"ExerciseSet({', '.join(self._by_name)})"


# --- calling learner code -------------------------------------------------------------------------------------

_current: contextvars.ContextVar[Exercise | None] = contextvars.ContextVar("xtlab_current_exercise", default=None)


class _Stub(Exception):
    """The learner's code raised NotImplementedError: nothing written yet."""


class LearnerCodeFailed(Exception):
    """The learner's code raised or ran too long; carries the verdict's text."""

    def __init__(self, checked: str, hint: str):
        super().__init__(checked)
        self.checked, self.hint = checked, hint


def call(function: Any, *args: Any, copy_args: bool = True, **kwargs: Any) -> Any:
    """Call the learner's ``function`` for a checker: arguments deep-copied, time-limited, failures reported.

    Inside ``Exercise.check`` a failure never reaches the notebook: NotImplementedError becomes NOT YET, any
    other exception or a run past the time limit becomes TRY AGAIN naming the call and the line that failed.
    """
    exercise = _current.get()
    name = exercise.name if exercise is not None else _name_of(function)
    limit = exercise.time_limit_s if exercise is not None else DEFAULT_TIME_LIMIT_S
    if not callable(function):
        raise LearnerCodeFailed(f"`{name}` must be a function (or class), but got {type(function).__name__}",
                                 f"pass `{name}` itself, without calling it")

    def copied_and_called() -> Any:  # the copy runs under the limit too: a learner's __deepcopy__ may not return
        if copy_args:
            return function(*copy.deepcopy(args), **copy.deepcopy(kwargs))
        return function(*args, **kwargs)

    try:
        return run_with_time_limit(copied_and_called, limit)
    except TimeLimitExceeded as err:
        if limit_expired():  # the whole check ran out of time: Exercise.check reports it
            raise
        culprit = _learner_frame(err)
        where = f" (it was in {culprit})" if culprit else ""
        raise LearnerCodeFailed(
            f"`{name}` did not finish within {limit:g} s{where}",
            "look for a loop whose condition never becomes false, or one that catches every exception "
            "(`except BaseException`, a bare `except:`) and carries on",
        ) from None
    except NotImplementedError:
        raise _Stub from None
    except KeyboardInterrupt:
        raise
    except BaseException as err:  # SystemExit and friends from learner code become verdicts too
        raise LearnerCodeFailed(
            f"`{name}` raised {type(err).__name__}: {_safe_text(err)}{_where(err)}",
            "read the line above: run your function on a small input in a cell of its own to see it fail",
        ) from None


def expect_type(value: Any, types: type | tuple[type, ...], what: str) -> Any:
    """``value`` if it is one of ``types``, else TRY AGAIN naming ``what`` and the expected type.

    ``bool`` is not taken for ``int``/``float`` unless listed; a string is never taken for a number (``"0.05"``
    where a weight decay is expected). Use it on everything the learner's code returns before comparing it.
    """
    types = types if isinstance(types, tuple) else (types,)
    ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
    if ok:
        return value
    expected = " or ".join(_type_name(kind) for kind in types)
    raise LearnerCodeFailed(f"{what} must be {expected}, but got {describe(value)}",
                             f"return {expected} here: compare the type your code returns with the exercise's "
                             f"description")


def _type_name(kind: type) -> str:
    module = getattr(kind, "__module__", "builtins")
    return kind.__qualname__ if module == "builtins" else f"{module.split('.')[0]}.{kind.__qualname__}"


def _name_of(function: Any) -> str:
    try:
        name = function.__name__
    except BaseException:  # noqa: BLE001 - a learner's object whose attribute lookup fails
        return "your function"
    return name if isinstance(name, str) else "your function"


def _safe_text(err: BaseException, limit_s: float = _REPR_LIMIT_S) -> str:
    """``str(err)``, or a placeholder when a learner's ``__str__`` fails or does not return."""
    try:
        text = run_with_time_limit(str, limit_s, err)
    except TimeLimitExceeded:
        if limit_expired():
            raise
        return "<its message did not finish printing>"
    except Exception:
        return "<unprintable>"
    return text if isinstance(text, str) else "<unprintable>"


def _learner_frame(err: BaseException) -> str | None:
    """``Class.method (line N: code)`` of the innermost learner-code frame the error went through, if any."""
    tb = err.__traceback__
    found = None
    while tb is not None:
        code = tb.tb_frame.f_code
        if is_learner_file(code.co_filename):
            found = (getattr(code, "co_qualname", code.co_name), code.co_filename, tb.tb_lineno)
        tb = tb.tb_next
    if found is None:
        return None
    qualname, filename, lineno = found
    line = linecache.getline(filename, lineno).strip()
    return f"`{qualname}` (line {lineno}: {line})" if line else f"`{qualname}` (line {lineno})"


def _where(err: BaseException) -> str:
    """`` (line N: code)`` for the innermost frame of the learner's own code, else the innermost frame."""
    frames = traceback.extract_tb(err.__traceback__)
    if not frames:
        return ""
    library_dirs = tuple(os.path.dirname(module.__file__) for module in (torch, np, os) if module.__file__)
    here = os.path.dirname(os.path.dirname(__file__))  # the xtlab package
    learner = [frame for frame in frames if not frame.filename.startswith((*library_dirs, here))]
    frame = (learner or frames)[-1]
    line = (frame.line or linecache.getline(frame.filename, frame.lineno)).strip()
    return f" (line {frame.lineno}: {line})" if line else f" (line {frame.lineno})"


def _is_stub_value(answer: Any) -> bool:
    return answer is None or answer is Ellipsis


class _global_random_state_kept:
    """Save Python's, NumPy's and torch's global random state and put it back afterwards."""

    def __enter__(self) -> None:
        self._python = random.getstate()
        self._numpy = np.random.get_state()
        self._torch = torch.get_rng_state()
        self._cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
        self._grad = torch.is_grad_enabled()

    def __exit__(self, *exc_info: Any) -> None:
        random.setstate(self._python)
        np.random.set_state(self._numpy)
        torch.set_rng_state(self._torch)
        if self._cuda is not None:
            torch.cuda.set_rng_state_all(self._cuda)
        torch.set_grad_enabled(self._grad)


def describe(value: Any, limit: int = 80) -> str:
    """A short, safe description of an answer for a verdict: type and a clipped repr, never an exception."""
    try:  # a learner's __repr__ may fail or never return
        text = run_with_time_limit(repr, _REPR_LIMIT_S, value)
    except TimeLimitExceeded:
        if limit_expired():
            raise
        text = "<its repr did not finish>"
    except Exception:
        text = "<unprintable>"
    if not isinstance(text, str):
        text = "<unprintable>"
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return f"{type(value).__name__} {text}"

