"""Which edition of a notebook is running: the learner's (answers wait for a commitment) or the solutions'.

The notebook build marks the solutions edition by calling :func:`show_answers` in its first code cell, so every
reveal, gated cell and audit shows its answer there (and on the site, built from the stored solutions). The
learner edition never calls it: an answer shows only after the learner committed a prediction.
"""

from __future__ import annotations

_answers_shown = False


def show_answers(shown: bool = True) -> None:
    """Show every answer without a commitment (the solutions edition), or stop doing so (``shown=False``)."""
    global _answers_shown
    if not isinstance(shown, bool):
        raise TypeError(f"shown must be a bool, but got {type(shown).__name__}: {shown!r:.60}")
    _answers_shown = shown


def answers_shown() -> bool:
    """True in the solutions edition: answers show without a commitment."""
    return _answers_shown
