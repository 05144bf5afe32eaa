"""The position-wise feed-forward network of a transformer block."""

from __future__ import annotations

from torch import Tensor, nn


class FeedForward(nn.Module):
    """Linear -> GELU -> Dropout -> Linear, with biases.

    Shape: (..., dim) -> (..., dim).
    """

    def __init__(self, dim: int, mult: int = 4, dropout: float = 0.0):
        super().__init__()
        inner = dim * mult
        self.net = nn.Sequential(nn.Linear(dim, inner), nn.GELU(), nn.Dropout(dropout), nn.Linear(inner, dim))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)
