"""Normalisation layers with the gain names x-transformers uses (LayerNorm ``gamma``, RMSNorm/ScaleNorm ``g``).

With ``unit_offset=True`` the gain is stored as an offset from 1 and starts at 0: the layer computes
``norm(x) * (1 + g)``, so weight decay pulls the layer towards identity scaling instead of towards zero.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from xtlab._checks import check_bool, check_int, check_last_dim


class _GainNorm(nn.Module):
    """Shared by the three norms: a learned gain, optionally stored as an offset from 1."""

    def __init__(self, dim: int, gain_shape: tuple[int, ...], gain_name: str, unit_offset: bool):
        super().__init__()
        self.dim = check_int("dim", dim, minimum=1)
        self.unit_offset = check_bool("unit_offset", unit_offset)
        self.gain_name = gain_name
        init = 0.0 if unit_offset else 1.0
        self.register_parameter(gain_name, nn.Parameter(torch.full(gain_shape, init)))

    def gain(self) -> Tensor:
        g = getattr(self, self.gain_name)
        return g + 1.0 if self.unit_offset else g

    def check_input(self, x) -> None:
        """A floating tensor whose last dimension is this norm's ``dim`` (ScaleNorm would accept any silently)."""
        check_last_dim("x", x, self.dim)

    def extra_repr(self) -> str:
        return f"{self.dim}, unit_offset={self.unit_offset}"


class LayerNorm(_GainNorm):
    """Layer norm without bias. Gain ``gamma`` of shape (dim,).

    Shape: input (..., dim) -> output (..., dim).
    """

    def __init__(self, dim: int, unit_offset: bool = False):
        super().__init__(dim, (dim,), "gamma", unit_offset)

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        return F.layer_norm(x, (self.dim,), weight=self.gain())  # gain inside the fused kernel


class RMSNorm(_GainNorm):
    """Root-mean-square norm. Gain ``g`` of shape (dim,)."""

    def __init__(self, dim: int, unit_offset: bool = False):
        super().__init__(dim, (dim,), "g", unit_offset)

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        return F.normalize(x, dim=-1) * (self.dim**0.5) * self.gain()


class ScaleNorm(_GainNorm):
    """Scale norm: one learned scalar. Gain ``g`` of shape (1,)."""

    def __init__(self, dim: int, unit_offset: bool = False):
        super().__init__(dim, (1,), "g", unit_offset)

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        return F.normalize(x, dim=-1) * (self.dim**0.5) * self.gain()


def make_norm(dim: int, use_rmsnorm: bool = False, use_scalenorm: bool = False, unit_offset: bool = False) -> nn.Module:
    """The norm an ``AttentionLayers`` asked for (LayerNorm unless told otherwise).

    Args:
        dim: the normalised width. use_rmsnorm / use_scalenorm: pick RMSNorm or ScaleNorm (exclusive).
        unit_offset: store the gain as an offset from 1.
    """
    check_bool("use_rmsnorm", use_rmsnorm)
    check_bool("use_scalenorm", use_scalenorm)
    if use_rmsnorm and use_scalenorm:
        raise ValueError("use_rmsnorm and use_scalenorm are exclusive, but both are True: pick one")
    if use_rmsnorm:
        return RMSNorm(dim, unit_offset)
    if use_scalenorm:
        return ScaleNorm(dim, unit_offset)
    return LayerNorm(dim, unit_offset)
