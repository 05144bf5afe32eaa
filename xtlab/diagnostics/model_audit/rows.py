"""One row of a report card: what was checked, which of three outcomes it had, and the evidence in numbers.

The three outcomes: the model **holds** the invariant, the model **fails** it, or the check **could not run**
(the adapter lacks the hook the check needs, or the adapter itself raised). A row that could not run says why
(:attr:`Row.reason`) and, for an adapter error, where in the adapter and what to try.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Iterable
from dataclasses import dataclass
from types import CodeType, TracebackType

HOLDS, FAILS, COULD_NOT_RUN = "holds", "fails", "could not run"
NOT_APPLICABLE = COULD_NOT_RUN  # the old name of a row whose hook is missing: one of the "could not run" reasons
STATUSES = (HOLDS, FAILS, COULD_NOT_RUN)

MISSING_CAPABILITY, ADAPTER_ERROR, CHECK_ERROR = "missing capability", "adapter error", "check error"
UNGUARDED_ENTRY_POINT = "unguarded entry point"
REASONS = ("", MISSING_CAPABILITY, ADAPTER_ERROR, CHECK_ERROR, UNGUARDED_ENTRY_POINT)


@dataclass(frozen=True)
class Row:
    """One checked invariant.

    Attributes:
        key: a short identifier (``"tying_paths"``), for code that reads the card.
        check: what was checked, in words.
        status: ``"holds"``, ``"fails"`` or ``"could not run"``, computed.
        evidence: the measurement behind the status, with its numbers (for a row that could not run: why, and a
            hint).
        reason: for a row that could not run, ``"missing capability"`` (a hook the adapter does not give, a
            feature the model does not have), ``"adapter error"`` (the adapter raised), ``"check error"`` (an
            extra check raised) or ``"unguarded entry point"`` (the DDP row would re-run an unguarded script);
            ``""`` for a row that ran.
    """

    key: str
    check: str
    status: str
    evidence: str
    reason: str = ""

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, but got {self.status!r}")
        if self.reason not in REASONS:
            raise ValueError(f"reason must be one of {REASONS}, but got {self.reason!r}")
        if (self.status == COULD_NOT_RUN) != bool(self.reason):
            raise ValueError(f"a row that could not run needs a reason, and only such a row has one; got "
                             f"status={self.status!r}, reason={self.reason!r}")

    @property
    def holds(self) -> bool:
        return self.status == HOLDS

    @property
    def fails(self) -> bool:
        return self.status == FAILS

    @property
    def ran(self) -> bool:
        return self.status != COULD_NOT_RUN

    @property
    def outcome(self) -> str:
        """The status, with the reason when the check could not run (``"could not run: adapter error"``)."""
        return f"{self.status}: {self.reason}" if self.reason else self.status


def status_of(holds: bool) -> str:
    """``"holds"`` or ``"fails"`` from a measured bool."""
    return HOLDS if holds else FAILS


def missing(key: str, check: str, why: str) -> Row:
    """A row that could not run because the adapter or the model lacks what it needs."""
    return Row(key, check, COULD_NOT_RUN, why, MISSING_CAPABILITY)


def short_error(err: BaseException, limit: int = 160) -> str:
    """``"TypeName: first line of the message"``, clipped."""
    text = " ".join(str(err).split())
    text = f"{type(err).__name__}: {text}" if text else type(err).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --- whose error: the adapter's or the model's ------------------------------------------------------------------

_MODULE_CALL = ("_call_impl", "_wrapped_call_impl")
_XTLAB_FOLDER = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))) + os.sep


def _codes_of(functions: Iterable[object]) -> set[CodeType]:
    """The code objects of ``functions`` and of every function defined inside them."""
    found: set[CodeType] = set()
    stack = [getattr(getattr(fn, "__func__", fn), "__code__", None) for fn in functions]
    while stack:
        code = stack.pop()
        if isinstance(code, CodeType) and code not in found:
            found.add(code)
            stack.extend(const for const in code.co_consts if isinstance(const, CodeType))
    return found


def _frames(err: BaseException) -> list[tuple[traceback.FrameSummary, CodeType]]:
    frames = []
    tb: TracebackType | None = err.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        frames.append((traceback.FrameSummary(code.co_filename, tb.tb_lineno, code.co_name), code))
        tb = tb.tb_next
    return frames


def raised_in_adapter(err: BaseException, hooks: Iterable[object]) -> traceback.FrameSummary | None:
    """The adapter frame ``err`` came from, or None when it came from the model.

    Inside the innermost frame of one of the adapter's functions (or of a function defined in one): when the
    error arose below a call of an ``nn.Module`` (the model's forward), it is the model's; otherwise (an attribute
    the wrapped model lacks, a shape the adapter got wrong before calling the model) it is the adapter's. An
    error that xtlab raised about a value the adapter returned (not a scalar loss, not a tuple) is the adapter's
    too; its frame is then the innermost xtlab frame.
    """
    codes = _codes_of(hooks)
    frames = _frames(err)
    inside = [index for index, (_, code) in enumerate(frames) if code in codes]
    if inside:
        deeper = frames[inside[-1] + 1:]
        if any(code.co_name in _MODULE_CALL and code.co_filename.endswith(os.path.join("nn", "modules", "module.py"))
               for _, code in deeper):
            return None
        return frames[inside[-1]][0]
    if frames and isinstance(err, (TypeError, ValueError)) and os.path.abspath(frames[-1][1].co_filename).startswith(
            _XTLAB_FOLDER) and any(name in str(err) for name in ("adapter", "make_batch")):
        return frames[-1][0]
    return None


def adapter_error_evidence(what: str, err: BaseException, frame: traceback.FrameSummary) -> str:
    """``"<what> raised ... at file:line in name: ...; hint"``: a traceback summarised in one line."""
    where = f"{os.path.basename(frame.filename)}:{frame.lineno} in {frame.name}"
    return (f"{what} raised {short_error(err)} at {where}: this is the adapter's error, not the model's; call the "
            f"hook yourself (e.g. adapter.loss(model, adapter.batch(model, 0))) to see the whole traceback")
