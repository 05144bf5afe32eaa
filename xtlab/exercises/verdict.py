"""A verdict an exercise checker returns (and prints), so a learner knows what to fix."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Verdict:
    """The outcome of checking a learner's answer.

    Attributes:
        passed: whether the answer is right.
        message: what was checked and, when wrong, what to look at.
    """

    passed: bool
    message: str

    def __str__(self) -> str:
        return f"{'PASS' if self.passed else 'NOT YET'}: {self.message}"

    def __bool__(self) -> bool:
        return self.passed


def report(verdict: Verdict) -> Verdict:
    """Print ``verdict`` for the learner and return it (tests inspect the return value)."""
    print(verdict)
    return verdict
