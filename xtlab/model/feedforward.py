"""The position-wise feed-forward network of a transformer block."""

from __future__ import annotations

from torch import Tensor, nn

from xtlab._checks import check_bool, check_int, check_last_dim, check_number, check_probability


def check_ff_mult(dim: int, mult) -> int:
    """``mult`` as a positive number (x-transformers allows a float); returns the inner width ``int(dim * mult)``."""
    check_number("ff_mult", mult)
    inner = int(dim * mult)
    if inner < 1:
        raise ValueError(f"ff_mult must give an inner width int(dim * ff_mult) >= 1, but got ff_mult={mult} "
                         f"with dim={dim}")
    return inner


class FeedForward(nn.Module):
    """Linear -> GELU -> Dropout -> Linear, with biases unless ``no_bias`` (x-transformers' default FeedForward).

    Args:
        dim: model width. mult: inner width multiplier (inner width ``int(dim * mult)``).
        dropout: dropout after the GELU, in [0, 1). no_bias: both linears without biases.

    Shape: (..., dim) -> (..., dim).
    """

    def __init__(self, dim: int, mult: float = 4, dropout: float = 0.0, *, no_bias: bool = False):
        check_int("dim", dim, minimum=1)
        inner = check_ff_mult(dim, mult)
        check_probability("dropout", dropout)
        check_bool("no_bias", no_bias)
        super().__init__()
        self.dim = dim
        bias = not no_bias
        self.net = nn.Sequential(nn.Linear(dim, inner, bias=bias), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(inner, dim, bias=bias))

    def forward(self, x: Tensor) -> Tensor:
        check_last_dim("x", x, self.dim)
        return self.net(x)
