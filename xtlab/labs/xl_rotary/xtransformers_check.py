"""Lab 03: the invariant run live on the installed x-transformers, whose design records memories before the norm
and normalises them at use.

x-transformers computes its softmax in float32 unless ``attn_flash=True`` (then SDPA runs in the model's dtype), so
the check builds it with flash attention, in float64 on the CPU, to judge it by the same float64 tolerance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from xtlab._checks import check_int
from xtlab.labs.xl_rotary.layer_dropout import library_version
from xtlab.labs.xl_rotary.models import DEPTH, DIM, EXACT_TOLERANCE, GAIN_SPREAD, HEADS, NUM_TOKENS, example_tokens
from xtlab.seeding import seed_everything
from xtlab.threads import one_cpu_thread


@dataclass(frozen=True)
class XTransformersProof:
    """Max |segmented - full| per segment for x-transformers, with the model's size.

    Attributes:
        version: the installed x-transformers. num_params: its parameter count. max_abs_diff: per segment.
    """

    version: str
    num_params: int
    segment_len: int
    max_abs_diff: np.ndarray

    @property
    def worst(self) -> float:
        return float(self.max_abs_diff.max())

    @property
    def equal(self) -> bool:
        return self.worst < EXACT_TOLERANCE


def _xtransformers_model(max_mem_len: int, seed: int):
    from x_transformers import Decoder as XDecoder
    from x_transformers import TransformerWrapper as XTransformerWrapper

    seed_everything(seed)
    model = XTransformerWrapper(num_tokens=NUM_TOKENS, max_seq_len=256, max_mem_len=max_mem_len,
                                attn_layers=XDecoder(dim=DIM, depth=DEPTH, heads=HEADS, rotary_pos_emb=True,
                                                     attn_flash=True))
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for module in model.modules():
            gain = getattr(module, "gamma", None)
            if isinstance(gain, torch.nn.Parameter):
                base = 0.0 if getattr(module, "unit_offset", False) else 1.0  # stored as an offset from 1
                gain.copy_(base + GAIN_SPREAD * torch.randn(gain.shape, generator=generator))
    return model.double().eval()


def xtransformers_segmented_vs_full(segment_len: int = 8, num_segments: int = 4, seed: int = 0) -> XTransformersProof:
    """Segments with memories against one full pass on x-transformers (dim 32, depth 2, 2 heads, rotary,
    float64, random norm gains like the lab's xtlab model)."""
    check_int("segment_len", segment_len, minimum=1)
    check_int("num_segments", num_segments, minimum=1)
    check_int("seed", seed, minimum=0)
    model = _xtransformers_model(segment_len * num_segments, seed)
    tokens = example_tokens(segment_len * num_segments)
    diffs, mems = [], None
    with torch.no_grad(), one_cpu_thread():
        full = model(tokens)
        for s in range(num_segments):
            part = slice(s * segment_len, (s + 1) * segment_len)
            logits, mems = model(tokens[:, part], mems=mems, return_mems=True)
            diffs.append((logits - full[:, part]).abs().max().item())
    num_params = sum(p.numel() for p in model.parameters())
    return XTransformersProof(library_version("x-transformers"), num_params, segment_len, np.array(diffs))


def xtransformers_zero_memories(num_mems: int = 4, seq_len: int = 8, seed: int = 0) -> dict[str, float]:
    """On the installed x-transformers: max |logits(M all-zero memory slots) - logits(mems=None)|, without a
    ``mem_masks`` argument and with an all-False one."""
    check_int("num_mems", num_mems, minimum=1)
    check_int("seq_len", seq_len, minimum=1)
    model = _xtransformers_model(num_mems + seq_len, seed)
    tokens = example_tokens(seq_len)
    zeros = [torch.zeros(1, num_mems, DIM, dtype=torch.float64) for _ in range(DEPTH)]
    hidden = [torch.zeros(1, num_mems, dtype=torch.bool) for _ in range(DEPTH)]
    with torch.no_grad(), one_cpu_thread():
        base = model(tokens)
        return {"no mem_masks": (model(tokens, mems=zeros) - base).abs().max().item(),
                "all-False mem_masks": (model(tokens, mems=zeros, mem_masks=hidden) - base).abs().max().item()}
