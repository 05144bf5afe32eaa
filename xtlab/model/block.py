"""One residual branch: ``x + fn(norm(x))``. The unit that layer dropout skips."""

from __future__ import annotations

from torch import nn

from xtlab._checks import check_choice, check_module

BLOCK_KINDS = ("attn", "cross", "ff")


class Block(nn.Module):
    """A pre-norm residual branch.

    Args:
        kind: ``"attn"`` (self-attention), ``"cross"`` (cross-attention) or ``"ff"`` (feed-forward).
        norm: the normalisation applied to the residual stream before ``fn``.
        fn: the branch itself.
    """

    def __init__(self, kind: str, norm: nn.Module, fn: nn.Module):
        check_choice("kind", kind, BLOCK_KINDS)
        check_module("norm", norm)
        check_module("fn", fn)
        super().__init__()
        self.kind = kind
        self.norm = norm
        self.fn = fn

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}"
