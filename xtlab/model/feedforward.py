"""The position-wise feed-forward network of a transformer block."""

from __future__ import annotations

from torch import Tensor, nn

from xtlab._checks import check_int, check_last_dim, check_probability


class FeedForward(nn.Module):
    """Linear -> GELU -> Dropout -> Linear, with biases.

    Args:
        dim: model width. mult: inner width multiplier. dropout: dropout after the GELU, in [0, 1).

    Shape: (..., dim) -> (..., dim).
    """

    def __init__(self, dim: int, mult: int = 4, dropout: float = 0.0):
        check_int("dim", dim, minimum=1)
        check_int("mult", mult, minimum=1)
        check_probability("dropout", dropout)
        super().__init__()
        self.dim = dim
        inner = dim * mult
        self.net = nn.Sequential(nn.Linear(dim, inner), nn.GELU(), nn.Dropout(dropout), nn.Linear(inner, dim))

    def forward(self, x: Tensor) -> Tensor:
        check_last_dim("x", x, self.dim)
        return self.net(x)
