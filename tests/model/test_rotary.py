"""Rotary embeddings: any integer positions, scores depend only on i - j."""

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from xtlab.model.rotary import RotaryEmbedding, apply_rotary, memory_positions

ROTARY = RotaryEmbedding(16)
torch.manual_seed(0)
Q, K = torch.randn(16, dtype=torch.float64), torch.randn(16, dtype=torch.float64)


def score(i: int, j: int) -> float:
    q = apply_rotary(Q[None], ROTARY(torch.tensor([i])))[0]
    k = apply_rotary(K[None], ROTARY(torch.tensor([j])))[0]
    return float(q @ k)


@settings(max_examples=60, deadline=None, derandomize=True)  # the same draws every run: a deterministic suite
@given(i=st.integers(-500, 500), j=st.integers(-500, 500), shift=st.integers(-500, 500))
def test_score_depends_only_on_distance(i, j, shift):
    assert abs(score(i, j) - score(i + shift, j + shift)) < 1e-9


def test_rotation_preserves_norm():
    x = torch.randn(5, 16, dtype=torch.float64)
    rotated = apply_rotary(x, ROTARY(torch.arange(-2, 3)))
    torch.testing.assert_close(rotated.norm(dim=-1), x.norm(dim=-1))


def test_position_zero_is_identity():
    torch.testing.assert_close(apply_rotary(Q[None], ROTARY(torch.tensor([0])))[0], Q)


def test_memory_positions_are_continuous_and_ordered():
    assert memory_positions(2, 3).tolist() == [-2, -1, 0, 1, 2]
    assert memory_positions(2, 3, "restart").tolist() == [0, 1, 0, 1, 2]
    assert memory_positions(0, 2).tolist() == [0, 1]
