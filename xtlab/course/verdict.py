"""What an exercise check says: PASS, NOT YET or TRY AGAIN, what was checked, and a hint."""

from __future__ import annotations

from dataclasses import dataclass

PASS, NOT_YET, TRY_AGAIN = "PASS", "NOT YET", "TRY AGAIN"
STATUSES = (PASS, NOT_YET, TRY_AGAIN)


@dataclass(frozen=True)
class Verdict:
    """The outcome of checking a learner's answer.

    Attributes:
        status: ``"PASS"`` (right), ``"NOT YET"`` (nothing written yet) or ``"TRY AGAIN"`` (wrong, or it failed).
        checked: what was checked and, when wrong, on which input and what came out.
        hint: what to look at next; empty on a pass.
    """

    status: str
    checked: str
    hint: str = ""

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, but got {self.status!r}")

    @classmethod
    def passed(cls, checked: str) -> Verdict:
        return cls(PASS, checked)

    @classmethod
    def not_yet(cls, checked: str, hint: str = "") -> Verdict:
        return cls(NOT_YET, checked, hint)

    @classmethod
    def try_again(cls, checked: str, hint: str = "") -> Verdict:
        return cls(TRY_AGAIN, checked, hint)

    @property
    def ok(self) -> bool:
        return self.status == PASS

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        text = f"{self.status}: {self.checked}"
        return f"{text}\nHint: {self.hint}" if self.hint else text

    # a cell that ends with a check shows the verdict as plain text (what nbval compares)
    __repr__ = __str__
