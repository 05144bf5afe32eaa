"""One row of a report card: what was checked, whether it holds, and the evidence in numbers."""

from __future__ import annotations

from dataclasses import dataclass

HOLDS, FAILS, NOT_APPLICABLE = "holds", "fails", "not applicable"
STATUSES = (HOLDS, FAILS, NOT_APPLICABLE)


@dataclass(frozen=True)
class Row:
    """One checked invariant.

    Attributes:
        key: a short identifier (``"tying_paths"``), for code that reads the card.
        check: what was checked, in words.
        status: ``"holds"``, ``"fails"`` or ``"not applicable"``, computed.
        evidence: the measurement behind the status, with its numbers.
    """

    key: str
    check: str
    status: str
    evidence: str

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, but got {self.status!r}")

    @property
    def holds(self) -> bool:
        return self.status == HOLDS

    @property
    def fails(self) -> bool:
        return self.status == FAILS


def status_of(holds: bool) -> str:
    """``"holds"`` or ``"fails"`` from a measured bool."""
    return HOLDS if holds else FAILS


def short_error(err: BaseException, limit: int = 160) -> str:
    """``"TypeName: first line of the message"``, clipped."""
    text = " ".join(str(err).split())
    text = f"{type(err).__name__}: {text}" if text else type(err).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
