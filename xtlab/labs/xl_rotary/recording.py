"""Lab 03, memory recording: where a layer records its memory and how it uses it, judged by one invariant.

A rotary XL model run segment by segment with memories must give, to float64 rounding, the logits of one causal
pass over the whole sequence. Two designs keep it (record before the norm and normalise at use, as x-transformers
does; record after the norm and use as is, as xtlab does); two break it (normalise twice; record at one stage and
use at another). ``forward_with_design`` runs xtlab's own modules with the recording step swapped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from xtlab._checks import check_choice, check_int, check_type
from xtlab.labs.xl_rotary.models import EXACT_TOLERANCE, build_xl_model, example_tokens
from xtlab.model import TransformerWrapper
from xtlab.threads import one_cpu_thread


@dataclass(frozen=True)
class Design:
    """One way to record a layer's memory and use it in the next segment.

    Attributes:
        record: ``"residual"`` (the stream before the layer's pre-norm) or ``"normed"`` (after it).
        normalise_at_use: apply the layer's pre-norm to the memory when the next segment reads it.
        who: who uses this design, or what is wrong with it.
    """

    record: str
    normalise_at_use: bool
    who: str


DESIGNS = {
    "record before the norm, normalise at use": Design("residual", True, "x-transformers"),
    "record after the norm, use as is": Design("normed", False, "xtlab"),
    "record after the norm, normalise again at use": Design("normed", True, "normalised twice"),
    "record before the norm, use as is": Design("residual", False, "recorded and used at different stages"),
}


def forward_with_design(model: TransformerWrapper, tokens: Tensor, mems: list[Tensor] | None,
                        design: str) -> tuple[Tensor, list[Tensor]]:
    """xtlab's decoder forward with the recording step of ``design``: (logits, new memories).

    With ``"record after the norm, use as is"`` this is exactly ``model(tokens, mems=mems, return_mems=True)``.
    """
    check_choice("design", design, DESIGNS)
    check_type("model", model, TransformerWrapper, "an xtlab TransformerWrapper (build_xl_model)")
    model.check_tokens(tokens, "tokens")
    if model.pos_emb is not None or model.num_memory_tokens:
        raise ValueError("forward_with_design needs a rotary model without memory tokens, like build_xl_model's")
    chosen = DESIGNS[design]
    layers = model.attn_layers
    x = model.token_emb(tokens)
    b, n, _ = x.shape
    new_mems, k = [], 0
    for block in layers.layers:
        if block.kind != "attn":
            x = x + block.fn(block.norm(x))
            continue
        mem = None if mems is None else mems[k]
        k += 1
        normed = block.norm(x)
        recorded = x if chosen.record == "residual" else normed  # what this layer keeps for the next segment
        used = block.norm(mem) if mem is not None and chosen.normalise_at_use else mem  # what attention reads
        kept = recorded if mem is None else torch.cat((mem, recorded), dim=1)
        new_mems.append(kept[:, max(kept.shape[1] - model.max_mem_len, 0):].detach())
        x = x + block.fn(normed, mem=used, key_mask=layers.key_mask(used, None, None, b, n))
    return model.to_logits(layers.final_norm(x)), new_mems


@dataclass(frozen=True)
class SegmentedProof:
    """Max |segmented logits - full logits| per segment, for one design.

    Attributes:
        label: the design (or configuration). max_abs_diff: (num_segments,) one number per segment.
    """

    label: str
    segment_len: int
    num_segments: int
    max_mem_len: int
    max_abs_diff: np.ndarray

    @property
    def worst(self) -> float:
        return float(self.max_abs_diff.max())

    @property
    def equal(self) -> bool:
        """Equal up to float64 rounding (below ``EXACT_TOLERANCE``)."""
        return self.worst < EXACT_TOLERANCE


def segmented_vs_full(design: str = "record after the norm, use as is", segment_len: int = 8,
                      num_segments: int = 4, max_mem_len: int = 64, mem_positions: str = "continuous",
                      unit_gains: bool = False, device: str | torch.device = "cpu") -> SegmentedProof:
    """Run ``num_segments`` segments with memories under ``design`` and compare each with one full causal pass.

    Args:
        design: a key of ``DESIGNS``.
        max_mem_len: memory kept per layer; shorter than the history, the segmented model is a sliding window
            and no longer the full pass.
        mem_positions: ``"continuous"`` or ``"restart"`` (memories overlaid on the current positions).
        unit_gains: norm gains left at 1 (see ``build_xl_model``).
        device: where to run, in float64 (the printed numbers use the CPU).
    """
    check_choice("design", design, DESIGNS)
    check_int("segment_len", segment_len, minimum=1)
    check_int("num_segments", num_segments, minimum=1)
    check_int("max_mem_len", max_mem_len, minimum=1)
    model = build_xl_model(max_mem_len=max_mem_len, mem_positions=mem_positions, unit_gains=unit_gains).to(device)
    tokens = example_tokens(segment_len * num_segments).to(device)
    diffs, mems = [], None
    with torch.no_grad(), one_cpu_thread():
        full = model(tokens)
        for s in range(num_segments):
            part = slice(s * segment_len, (s + 1) * segment_len)
            logits, mems = forward_with_design(model, tokens[:, part], mems, design)
            diffs.append((logits - full[:, part]).abs().max().item())
    label = design if mem_positions == "continuous" else f"{design} ({mem_positions} positions)"
    return SegmentedProof(label, segment_len, num_segments, max_mem_len, np.array(diffs))


def all_designs(segment_len: int = 8, num_segments: int = 4, max_mem_len: int = 64,
                unit_gains: bool = False) -> list[SegmentedProof]:
    """``segmented_vs_full`` for every design in ``DESIGNS``."""
    return [segmented_vs_full(design, segment_len, num_segments, max_mem_len, unit_gains=unit_gains)
            for design in DESIGNS]

