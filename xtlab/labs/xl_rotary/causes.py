"""Lab 03, the article's three causes of ``mems=None`` != all-zero memories, each tried on the mismatch itself.

A caller's all-zero memory gives zero keys and zero values, whatever their rotary positions (a rotation of zero is
zero) and whatever stage normalises them (xtlab's norms have no bias, so the norm of zero is zero). Only the mask
can change what they do. ``zero_memory_causes`` measures the unmasked mismatch under every position numbering and
every recording design, and once more with the slot mask.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from xtlab._checks import check_int
from xtlab.labs.xl_rotary.models import DEPTH, DIM, build_xl_model, example_tokens
from xtlab.labs.xl_rotary.recording import DESIGNS, forward_with_design
from xtlab.model.rotary import MEM_POSITION_MODES
from xtlab.threads import one_cpu_thread


@dataclass(frozen=True)
class ZeroMemoryCauses:
    """max |logits(all-zero memories) - logits(mems=None)| under each candidate cause.

    Attributes:
        by_positions: numbering of the memory keys ("continuous", "restart") -> gap, without a mask.
        by_design: recording design (``DESIGNS``) -> gap, without a mask.
        masked: the gap with the slot mask (continuous positions, xtlab's design).
    """

    by_positions: dict[str, float]
    by_design: dict[str, float]
    masked: float


def zero_memory_causes(num_mems: int = 4, seq_len: int = 8) -> ZeroMemoryCauses:
    """Measure the ``mems=None`` / zero-memory mismatch under each of the article's three causes."""
    check_int("num_mems", num_mems, minimum=1)
    check_int("seq_len", seq_len, minimum=1)
    tokens = example_tokens(seq_len)
    zeros = [torch.zeros(1, num_mems, DIM, dtype=torch.float64) for _ in range(DEPTH)]
    by_positions, by_design = {}, {}
    with torch.no_grad(), one_cpu_thread():
        for mode in MEM_POSITION_MODES:
            model = build_xl_model(mem_positions=mode, mask_empty_mems=False)
            by_positions[mode] = (model(tokens, mems=zeros) - model(tokens)).abs().max().item()
        model = build_xl_model(mask_empty_mems=False)
        alone = model(tokens)
        for design in DESIGNS:
            logits, _ = forward_with_design(model, tokens, zeros, design)
            by_design[design] = (logits - alone).abs().max().item()
        masked_model = build_xl_model()
        masked = (masked_model(tokens, mems=zeros) - masked_model(tokens)).abs().max().item()
    return ZeroMemoryCauses(by_positions, by_design, masked)
