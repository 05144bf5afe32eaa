"""Lab 03, positions: which rotary positions memory keys may get, judged by the segmented-equals-full invariant.

Rotary attention only sees differences of positions. So any numbering that keeps every (query, key) offset of the
full pass is right, wherever it starts: ``arange(-M, T)`` and ``arange(0, M + T)`` alike. Numbering memories and
current tokens both from 0 overlaps them and changes the offsets. The test is one rotary attention head, built with
xtlab's ``RotaryEmbedding``, run over M + T hidden states at once and as one segment with M memories.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from xtlab._checks import check_int
from xtlab.labs.xl_rotary.models import EXACT_TOLERANCE
from xtlab.model.rotary import RotaryEmbedding, apply_rotary

POSITION_SCHEMES: dict[str, Callable[[int, int], list[int]]] = {
    "arange(-M, T)": lambda m, t: list(range(-m, t)),
    "arange(0, M + T)": lambda m, t: list(range(m + t)),
    "both from 0 (overlap)": lambda m, t: list(range(m)) + list(range(t)),
}


def article_order(num_mems: int, seq_len: int) -> list[int]:
    """The order the article prints for its example: memories newest-first, ``[-1, -2, ..., -M, 0, ..., T-1]``."""
    return list(range(-1, -num_mems - 1, -1)) + list(range(seq_len))


def _attend(q_in, kv_in, q_pos, k_pos, allowed, weights, rotary):
    w_q, w_k, w_v = weights
    q = apply_rotary(q_in @ w_q, rotary(q_pos))
    k = apply_rotary(kv_in @ w_k, rotary(k_pos))
    scores = (q @ k.T) / q.shape[-1] ** 0.5
    return scores.masked_fill(~allowed, float("-inf")).softmax(-1) @ (kv_in @ w_v)


def _positions_tensor(positions: Sequence[int], count: int) -> torch.Tensor:
    if isinstance(positions, torch.Tensor):
        positions = positions.tolist()
    if isinstance(positions, (str, bytes)) or not isinstance(positions, Sequence):
        raise TypeError(f"positions must be a list of ints, but got {type(positions).__name__}: {positions!r:.80}")
    if not all(isinstance(p, (int, np.integer)) and not isinstance(p, (bool, np.bool_)) for p in positions):
        raise TypeError(f"positions must hold ints only, but got {list(positions)!r:.80}")
    if len(positions) != count:
        raise ValueError(f"positions must hold M + T = {count} entries, but got {len(positions)}")
    return torch.tensor([int(p) for p in positions], dtype=torch.long)


def segment_attention_gap(positions: Sequence[int], num_mems: int, seq_len: int, dim_head: int = 16,
                          seed: int = 0) -> float:
    """Max |segment output - full output| of one rotary attention head (float64).

    Full pass: M + T hidden states at positions 0 .. M+T-1, causal. Segment pass: the last T as queries, keys
    ``[M memories ; T current]`` at ``positions`` (queries at ``positions[M:]``), every memory visible.

    Args:
        positions: M + T ints, the key positions to test.
        num_mems (M), seq_len (T). dim_head: the head size (even). seed: the hidden states and projections.
    """
    check_int("num_mems", num_mems, minimum=0)
    check_int("seq_len", seq_len, minimum=1)
    check_int("dim_head", dim_head, minimum=2)
    if dim_head % 2:
        raise ValueError(f"dim_head must be even for rotary, but got {dim_head}")
    check_int("seed", seed, minimum=0)
    key_pos = _positions_tensor(positions, num_mems + seq_len)
    n = num_mems + seq_len
    generator = torch.Generator().manual_seed(seed)
    hidden = torch.randn(n, dim_head, generator=generator, dtype=torch.float64)
    weights = [torch.randn(dim_head, dim_head, generator=generator, dtype=torch.float64) / dim_head**0.5
               for _ in range(3)]
    rotary = RotaryEmbedding(dim_head)
    causal = torch.ones(n, n, dtype=torch.bool).tril()
    full = _attend(hidden, hidden, torch.arange(n), torch.arange(n), causal, weights, rotary)[num_mems:]
    segment = _attend(hidden[num_mems:], hidden, key_pos[num_mems:], key_pos, causal[num_mems:], weights, rotary)
    return float((segment - full).abs().max())


@dataclass(frozen=True)
class PositionSchemes:
    """Every scheme of ``POSITION_SCHEMES`` for one (M, T).

    Attributes:
        positions: scheme -> the M + T key positions. gap: scheme -> max |segment - full| of one attention head.
    """

    num_mems: int
    seq_len: int
    positions: dict[str, list[int]]
    gap: dict[str, float]

    @property
    def agrees(self) -> dict[str, bool]:
        """scheme -> the segment reproduces the full pass (below ``EXACT_TOLERANCE``)."""
        return {scheme: gap < EXACT_TOLERANCE for scheme, gap in self.gap.items()}

    @property
    def offsets_kept(self) -> dict[str, bool]:
        """scheme -> every query-key offset equals the full pass's (the only thing rotary sees)."""
        true = np.arange(-self.num_mems, self.seq_len)
        return {scheme: bool(np.array_equal(np.subtract.outer(p[self.num_mems:], p),
                                            np.subtract.outer(true[self.num_mems:], true)))
                for scheme, p in ((s, np.array(v)) for s, v in self.positions.items())}


def position_schemes(num_mems: int = 4, seq_len: int = 8) -> PositionSchemes:
    """Positions and the one-head invariant for each scheme."""
    check_int("num_mems", num_mems, minimum=0)
    check_int("seq_len", seq_len, minimum=1)
    positions = {scheme: build(num_mems, seq_len) for scheme, build in POSITION_SCHEMES.items()}
    gap = {scheme: segment_attention_gap(p, num_mems, seq_len) for scheme, p in positions.items()}
    return PositionSchemes(num_mems, seq_len, positions, gap)


def position_hint(answer: list[int], m: int, t: int) -> str:
    """The hint for a numbering whose segment differs from the full pass (shared by the exercises)."""
    memories, current = answer[:m], answer[m:]
    steps = {b - a for a, b in zip(answer[:-1], answer[1:], strict=True)}
    if answer == list(range(m)) + list(range(t)):
        return "memories and current tokens both start at 0, so the memories overlay the current tokens"
    if answer == article_order(m, t):
        return "the memories are listed newest-first; keys are stored oldest to newest, so positions must grow by 1"
    if len(set(memories)) < len(memories) or len(set(current)) < len(current):
        return ("several keys share one position: every memory and every current token needs its own position, "
                "one step after the key before it")
    if len(set(answer)) < len(answer):
        return ("a memory and a current token share a position: the memories must come just before the current "
                "tokens, each key one step after the one before it")
    if current and memories and steps <= {1, 2} and memories[-1] == current[0] - 2:
        return "off by one: the newest memory sits two steps before the first current token, leaving a gap"
    return "every key must keep its true distance to every query: the memories come just before the current tokens"
