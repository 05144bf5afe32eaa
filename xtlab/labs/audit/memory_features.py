"""Which features break "a segmented XL pass equals one full pass"? The report card's row on the lab's
x-transformers decoder built with and without memory tokens and attention memory key/values."""

from __future__ import annotations

from xtlab._checks import check_int
from xtlab.diagnostics.model_audit import Row, adapter_for
from xtlab.diagnostics.model_audit.checks import segmented_vs_full
from xtlab.labs.audit.models import build_x_transformers
from xtlab.threads import one_cpu_thread

FEATURES = tuple((tokens, kv) for tokens in (False, True) for kv in (False, True))


def segmented_by_memory_features(seed: int = 0, device=None) -> dict[tuple[bool, bool], Row]:
    """``(memory_tokens, memory_kv) -> segmented-vs-full row`` for the four builds (same seed, eval mode)."""
    check_int("seed", seed, minimum=0)
    rows = {}
    with one_cpu_thread():
        for memory_tokens, memory_kv in FEATURES:
            model, _ = build_x_transformers(seed, memory_tokens=memory_tokens, memory_kv=memory_kv)
            model = model.to(device) if device is not None else model
            rows[(memory_tokens, memory_kv)] = segmented_vs_full(model, adapter_for(model), seed, 1)
    return rows


def holding_builds(rows: dict[tuple[bool, bool], Row]) -> tuple[tuple[bool, bool], ...]:
    """The ``(memory_tokens, memory_kv)`` builds whose row holds."""
    return tuple(features for features, row in rows.items() if row.holds)
