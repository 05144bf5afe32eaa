"""Shape checks that many exercises share: an answer that must be a dict with given keys and allowed values."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from xtlab.course.exercise import describe
from xtlab.course.verdict import Verdict


def mapping_problem(answer: Any, keys: Iterable[str], values: tuple[Any, ...], call_text: str) -> Verdict | None:
    """None when ``answer`` is a mapping with exactly ``keys`` and every value in ``values``; else the verdict.

    Args:
        answer: what the learner's function returned.
        keys: the keys the answer must hold, each once.
        values: the allowed values (``(True, False)`` for yes/no predictions); checked by equality and type.
        call_text: how the learner's call reads in a message, e.g. ``"ddp_predictions()"``.
    """
    keys = list(keys)
    shown = " or ".join(repr(value) for value in values)
    if not isinstance(answer, Mapping):
        return Verdict.make_try_again(f"{call_text} returned {describe(answer)}",
                                 f"return a dict {{name: {shown}}} with the names {keys}")
    missing = [key for key in keys if key not in answer]
    unknown = sorted(str(key) for key in answer if key not in keys)
    if missing or unknown:
        return Verdict.make_try_again(f"{call_text} must answer each of {keys} exactly once: missing {missing}, "
                                 f"unknown {unknown}", "one key per name, spelt as listed")
    bad = {key: value for key, value in answer.items()
           if not any(type(value) is type(allowed) and value == allowed for allowed in values)}
    if bad:
        return Verdict.make_try_again(f"each answer must be {shown}, but got {bad}",
                                 f"write {shown} exactly" + (", not strings" if bool in map(type, values) else ""))
    return None
