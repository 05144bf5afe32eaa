"""Lab 03, items 1-2: the positions memory keys get, and what rotary makes of them.

Pure functions over ``xtlab.model.rotary``: no model is trained, nothing is random.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from xtlab._checks import check_int
from xtlab.model.rotary import RotaryEmbedding, apply_rotary, memory_positions


@dataclass(frozen=True)
class KeyPositions:
    """Positions of ``[memory ; current]`` keys under both modes.

    Attributes:
        num_mems (M), seq_len (T).
        continuous: ``arange(-M, T)`` (the fix). restart: ``[0..M-1, 0..T-1]`` (the bug).
        is_memory: (M + T,) True for the memory keys.
    """

    num_mems: int
    seq_len: int
    continuous: np.ndarray
    restart: np.ndarray
    is_memory: np.ndarray

    @property
    def continuous_list(self) -> list[int]:
        return [int(p) for p in self.continuous]

    @property
    def strictly_increasing(self) -> dict[str, bool]:
        """Whether the keys' positions grow one by one from oldest to newest, per mode."""
        return {mode: bool(np.all(np.diff(getattr(self, mode)) == 1)) for mode in ("continuous", "restart")}


def key_positions(num_mems: int, seq_len: int) -> KeyPositions:
    """Positions given to M memory keys and T current keys, continuous vs restarted."""
    check_int("num_mems", num_mems, minimum=0)
    check_int("seq_len", seq_len, minimum=1)
    cont = memory_positions(num_mems, seq_len, "continuous").numpy()
    restart = memory_positions(num_mems, seq_len, "restart").numpy()
    is_memory = np.arange(num_mems + seq_len) < num_mems
    return KeyPositions(num_mems, seq_len, cont, restart, is_memory)


@dataclass(frozen=True)
class RotaryScores:
    """Rotary query-key scores for every causal (query, key) pair, by true distance.

    The query and key vectors are the same all-ones vector at every position, so the score can only
    depend on the positions rotary gives them: ``score = f(assigned distance)``.

    Attributes:
        mode: "continuous" or "restart".
        true_distance: (P,) i - j with the memory keys at their true positions -M..-1.
        assigned_distance: (P,) the distance rotary sees under ``mode``.
        score: (P,) q_i . k_j after rotation. is_memory: (P,) True for pairs whose key is a memory.
        curve_distance, curve_score: the reference f(d) for d in 0..M+T-1 (what a pair at true distance d
            should score).
    """

    mode: str
    num_mems: int
    seq_len: int
    true_distance: np.ndarray
    assigned_distance: np.ndarray
    score: np.ndarray
    is_memory: np.ndarray
    curve_distance: np.ndarray
    curve_score: np.ndarray

    @property
    def max_error(self) -> float:
        """Largest |score - f(true distance)| over all pairs: 0 when positions are continuous."""
        expected = self.curve_score[self.true_distance]
        return float(np.abs(self.score - expected).max())

    @property
    def memory_keys_seen_in_future(self) -> int:
        """(query, memory key) pairs whose assigned distance is negative: the memory looks like a future token."""
        return int(np.sum(self.is_memory & (self.assigned_distance < 0)))

    @property
    def memory_pairs_misplaced(self) -> int:
        """(query, memory key) pairs whose assigned distance differs from the true one."""
        return int(np.sum(self.is_memory & (self.assigned_distance != self.true_distance)))


def rotary_scores(num_mems: int, seq_len: int, mode: str = "continuous", dim_head: int = 32) -> RotaryScores:
    """Score every causal (query i, key j) pair with xtlab's rotary module.

    Queries sit at 0..T-1, current keys at 0..T-1 (j <= i) and memory keys at their true positions -M..-1,
    but rotary is given the positions ``memory_positions(M, T, mode)``. Computed in float64.
    """
    check_int("num_mems", num_mems, minimum=0)
    check_int("seq_len", seq_len, minimum=1)
    check_int("dim_head", dim_head, minimum=2)
    rotary = RotaryEmbedding(dim_head)
    ones = torch.ones(dim_head, dtype=torch.float64)
    query_pos = torch.arange(seq_len)
    key_pos = memory_positions(num_mems, seq_len, mode)  # assigned
    true_key_pos = memory_positions(num_mems, seq_len, "continuous")
    q = apply_rotary(ones.expand(seq_len, -1), rotary(query_pos))  # (T, d)
    k = apply_rotary(ones.expand(num_mems + seq_len, -1), rotary(key_pos))  # (M+T, d)
    scores = q @ k.T  # (T, M+T)
    true_dist = query_pos[:, None] - true_key_pos[None, :]
    causal = true_dist >= 0
    assigned_dist = query_pos[:, None] - key_pos[None, :]
    is_memory = (torch.arange(num_mems + seq_len) < num_mems).expand(seq_len, -1)

    curve_d = torch.arange(num_mems + seq_len)
    qc = apply_rotary(ones.expand(len(curve_d), -1), rotary(curve_d))
    k0 = apply_rotary(ones[None], rotary(torch.zeros(1, dtype=torch.long)))
    curve = (qc @ k0.T)[:, 0]  # f(d): query at d, key at 0
    return RotaryScores(mode, num_mems, seq_len, true_dist[causal].numpy(), assigned_dist[causal].numpy(),
                        scores[causal].numpy(), is_memory[causal].numpy(), curve_d.numpy(), curve.numpy())
