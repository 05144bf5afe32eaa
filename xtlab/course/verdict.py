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

    # constructors are named make_*, so that nothing callable reads like the flag ``passed``
    @classmethod
    def make_pass(cls, checked: str) -> Verdict:
        return cls(PASS, checked)

    @classmethod
    def make_not_yet(cls, checked: str, hint: str = "") -> Verdict:
        return cls(NOT_YET, checked, hint)

    @classmethod
    def make_try_again(cls, checked: str, hint: str = "") -> Verdict:
        return cls(TRY_AGAIN, checked, hint)

    @property
    def passed(self) -> bool:
        """The one flag: True for PASS, False for NOT YET and TRY AGAIN."""
        return self.status == PASS

    def __bool__(self) -> bool:
        # `if verdict:` would read as "passed" but cannot say NOT YET from TRY AGAIN: make the reader choose
        raise TypeError("a Verdict has no truth value: test verdict.passed, or verdict.status")

    def __str__(self) -> str:
        text = f"{self.status}: {self.checked}"
        return f"{text}\nHint: {self.hint}" if self.hint else text

    # a cell that ends with a check shows the verdict as plain text (what nbval compares)
    __repr__ = __str__
