"""Rotary position embedding (RoPE) for any integer positions, negative ones included.

A query at position i and a key at position j are rotated by angles i*w and j*w, so their dot
product depends only on i - j. Angles are computed in float64 and cast at the end, so a segment
that starts at a different absolute position gets the same relative rotation to the last bit.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from xtlab._checks import check_choice, check_int, check_last_dim, check_number, check_tensor

MEM_POSITION_MODES = ("continuous", "restart")


class RotaryEmbedding(nn.Module):
    """Angles for rotary position embedding.

    Args:
        dim_head: the rotated width: the head size, or fewer leading features for partial rotary (even).
        theta: base of the geometric frequency ladder.

    Shape: ``forward(positions)``: positions (n,) integer -> angles (n, dim_head), float64.
    """

    def __init__(self, dim_head: int, theta: float = 10000.0):
        super().__init__()
        check_int("dim_head", dim_head, minimum=2)
        if dim_head % 2:
            raise ValueError(f"rotary embedding needs an even head dimension, but got dim_head={dim_head}")
        check_number("theta", theta)
        if theta <= 1:
            raise ValueError(f"theta must be > 1, but got {theta}")
        self.dim_head, self.theta = dim_head, float(theta)

    def inv_freq(self, device=None) -> Tensor:
        steps = torch.arange(0, self.dim_head, 2, dtype=torch.float64, device=device)
        return 1.0 / self.theta ** (steps / self.dim_head)

    def forward(self, positions: Tensor) -> Tensor:
        check_tensor("positions", positions, kind="integer", ndim=1)
        freqs = positions.to(torch.float64)[:, None] * self.inv_freq(positions.device)  # (n, d/2)
        return torch.cat((freqs, freqs), dim=-1)  # (n, d)

    def extra_repr(self) -> str:
        return f"dim_head={self.dim_head}, theta={self.theta:g}"


def rotate_half(x: Tensor) -> Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary(x: Tensor, angles: Tensor) -> Tensor:
    """Rotate ``x`` (..., n, d) by ``angles`` (n, d).

    Args:
        x: floating (..., n, d), d even. angles: floating (n, d), as ``RotaryEmbedding`` returns them.
    """
    check_tensor("x", x, kind="floating")
    if x.ndim < 2 or x.shape[-1] % 2:
        raise ValueError(f"x must have shape (..., n, d) with an even d, but got shape {tuple(x.shape)}")
    check_last_dim("angles", angles, x.shape[-1])
    if tuple(angles.shape) != tuple(x.shape[-2:]):
        raise ValueError(f"angles must have shape (n, d) = {tuple(x.shape[-2:])} to match x, "
                         f"but got {tuple(angles.shape)}")
    return rotate(x, angles.cos().to(x.dtype), angles.sin().to(x.dtype))


def rotate(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate ``x`` (..., n, d) given precomputed ``cos`` and ``sin`` (n, d) of its angles."""
    return x * cos + rotate_half(x) * sin


def rotate_leading(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate the leading ``r`` features of ``x`` (..., n, d) by ``cos``/``sin`` (n, r), r <= d; the other
    ``d - r`` pass unchanged (partial rotary, as GPT-J and x-transformers' ``rotary_emb_dim``)."""
    r = cos.shape[-1]
    if r == x.shape[-1]:
        return rotate(x, cos, sin)
    return torch.cat((rotate(x[..., :r], cos, sin), x[..., r:]), dim=-1)


def memory_positions(num_mems: int, seq_len: int, mode: str = "continuous", device=None) -> Tensor:
    """Positions of ``[memory ; current]`` keys.

    ``"continuous"``: ``arange(-M, T)`` — memories sit just before the current tokens.
    ``"restart"``: ``[0..M-1, 0..T-1]`` — the bug: memories overlay the current positions.
    """
    check_int("num_mems", num_mems, minimum=0)
    check_int("seq_len", seq_len, minimum=0)
    check_choice("mode", mode, MEM_POSITION_MODES)
    if mode == "continuous":
        return torch.arange(-num_mems, seq_len, device=device)
    return torch.cat((torch.arange(num_mems, device=device), torch.arange(seq_len, device=device)))
