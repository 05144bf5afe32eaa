"""The four tying styles Lab 02 compares, and a verdict on how a model's embedding and output relate.

Styles: ``"none"`` (separate output weight), ``"naive"`` (``output.weight = embedding.weight``, a teaching
exhibit), ``"tied_linear"`` (xtlab's ``TiedLinear``, the fix) and ``"registered"`` (Meta Lingua's first fix,
a ``TiedLinear`` that registers the embedding as its own submodule).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import torch
from torch import nn

from xtlab.diagnostics.ties import TieStatus, embedding_output_tie, tensor_tie_status
from xtlab.model import AttentionLayers, Decoder, TransformerWrapper
from xtlab.model.tied_linear import RegisteredTiedLinear, TiedLinear, tie_naively, tie_registered

STYLES: dict[str, str] = {
    "none": "no tying",
    "naive": "naive assignment",
    "tied_linear": "TiedLinear",
    "registered": "registered TiedLinear (Lingua)",
}

# Verdicts: the same Parameter object / distinct Parameters over one storage / separate memory
TIED, HALF_TIED, UNTIED = "tied", "half-tied", "untied"


@dataclass(frozen=True)
class ModelSize:
    """A tiny language model's shape (small so every path runs in milliseconds)."""

    num_tokens: int = 32
    max_seq_len: int = 16
    dim: int = 32
    depth: int = 1
    heads: int = 2


def check_style(style: str) -> str:
    if style not in STYLES:
        raise ValueError(f"style must be one of {sorted(STYLES)}, but got {style!r}")
    return style


def decoder(size: ModelSize) -> Decoder:
    """The ``Decoder`` of ``size``, with ``attn_dim_head = dim // heads`` where xtlab's model takes it (x-transformers'
    default head size, 64, would make this tiny model's attention several times larger than its ``dim``)."""
    sizes = {"dim": size.dim, "depth": size.depth, "heads": size.heads}
    if "attn_dim_head" in inspect.signature(AttentionLayers.__init__).parameters:  # Decoder passes it on
        sizes["attn_dim_head"] = size.dim // size.heads
    return Decoder(**sizes)


def build_model(style: str, *, seed: int = 0, size: ModelSize = ModelSize(), device: str = "cpu") -> nn.Module:
    """A tiny xtlab ``TransformerWrapper`` tied in ``style``, built under ``device`` (e.g. ``"meta"``).

    Args:
        style: one of ``STYLES``.
        seed: seeds torch before building, so every style starts from the same values.
        device: where to build, named explicitly (never torch's default device): ``"cpu"``, or ``"meta"`` for shapes
            only (no memory), as large-model loaders do.
    """
    check_style(style)
    torch.manual_seed(seed)
    with torch.device(device):
        layers = decoder(size)
        model = TransformerWrapper(size.num_tokens, size.max_seq_len, layers, tie_embedding=style == "tied_linear")
        if style == "naive":
            tie_naively(model)
        elif style == "registered":
            tie_registered(model)
    return model


def embedding_weight(model: nn.Module) -> torch.Tensor:
    """The token embedding's weight of an xtlab model."""
    return model.token_emb.weight


def output_weight(model: nn.Module) -> torch.Tensor:
    """The weight the output projection multiplies by, whichever style built it."""
    out = model.to_logits
    if isinstance(out, RegisteredTiedLinear):
        return out.tied_module.weight
    if isinstance(out, (TiedLinear, nn.Linear)):
        return out.weight
    raise TypeError(f"to_logits must be an nn.Linear, TiedLinear or RegisteredTiedLinear, but got {type(out).__name__}")


def shares_storage(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Whether ``a`` and ``b`` live in the same memory (one object or two); meta tensors hold none."""
    return tensor_tie_status(a, b) is not TieStatus.UNTIED


_VERDICT = {TieStatus.TIED: TIED, TieStatus.HALF_TIED: HALF_TIED, TieStatus.UNTIED: UNTIED}


def pair_verdict(a: torch.Tensor, b: torch.Tensor) -> str:
    """``"tied"`` (one object), ``"half-tied"`` (two objects, one storage) or ``"untied"``."""
    return _VERDICT[tensor_tie_status(a, b)]


def tie_verdict(model: nn.Module) -> str:
    """How ``model``'s embedding and output weights relate, from the tie inspector: tied, half-tied or untied."""
    return _VERDICT[embedding_output_tie(model)]


def storage_pointer(tensor: torch.Tensor) -> int:
    """The address of ``tensor``'s storage (0 on the meta device)."""
    return 0 if tensor.device.type == "meta" else tensor.untyped_storage().data_ptr()


def tie_keys(model: nn.Module) -> list[str]:
    """The state_dict keys of the embedding and the output projection."""
    return [key for key in model.state_dict() if key.startswith(("token_emb.", "to_logits."))]
