"""Lab 03, items 3-4: the exact-equality proof and empty memories.

A rotary XL model run segment by segment with memories must give, to float64 rounding, the logits of
one pass over the whole sequence. Each teaching switch of ``xtlab.model.Decoder`` breaks one part of it.
Everything here runs on the CPU in float64, so the numbers printed do not depend on the device.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from xtlab._checks import check_int
from xtlab.model import Decoder, TransformerWrapper
from xtlab.seeding import seed_everything
from xtlab.threads import one_cpu_thread

NUM_TOKENS = 64
DIM, DEPTH, HEADS = 32, 2, 2
EXACT_TOLERANCE = 1e-12  # float64 rounding of this tiny model is ~1e-15; a real bug is >= 1e-3


def build_xl_model(*, mem_positions: str = "continuous", mask_empty_mems: bool = True, mem_record: str = "normed",
                   max_mem_len: int = 64, seed: int = 0, dtype: torch.dtype = torch.float64) -> TransformerWrapper:
    """A tiny rotary XL decoder in eval mode. The switches change no parameter, so one seed gives the
    same weights for every configuration."""
    seed_everything(seed)
    layers = Decoder(DIM, DEPTH, HEADS, rotary_pos_emb=True, mem_positions=mem_positions,
                     mask_empty_mems=mask_empty_mems, mem_record=mem_record)
    model = TransformerWrapper(NUM_TOKENS, 256, layers, max_mem_len=max_mem_len)
    return model.to(dtype).eval()


def example_tokens(length: int, seed: int = 1) -> torch.Tensor:
    """(1, length) token ids, drawn on the CPU so every device sees the same sequence."""
    check_int("length", length, minimum=1)
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, NUM_TOKENS, (1, length), generator=generator)


@dataclass(frozen=True)
class SegmentedProof:
    """Max |segmented logits - full logits| for each segment.

    Attributes:
        label: the configuration. segment_len, num_segments, max_mem_len.
        max_abs_diff: (num_segments,) one number per segment.
    """

    label: str
    start_from_zeros: bool
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


CONFIGS = {
    "correct": {},
    "restarted positions": {"mem_positions": "restart"},
    "residual recorded": {"mem_record": "residual"},
    "zero memories unmasked": {"mask_empty_mems": False},
}


def segmented_vs_full(config: str = "correct", segment_len: int = 8, num_segments: int = 4, max_mem_len: int = 64,
                      start_from_zeros: bool = False, device: str | torch.device = "cpu",
                      dtype: torch.dtype = torch.float64) -> SegmentedProof:
    """Run ``num_segments`` segments with XL memories and compare each with the same slice of one full pass.

    Args:
        config: a key of ``CONFIGS``. max_mem_len: memory kept per layer; shorter than the history makes
            the segmented model a sliding window, which is no longer the full pass.
        start_from_zeros: give the first segment ``max_mem_len`` all-zero memory slots instead of ``mems=None``.
        device, dtype: where to run (the proof numbers use the defaults, CPU float64).
    """
    if config not in CONFIGS:
        raise ValueError(f"config must be one of {sorted(CONFIGS)}, but got {config!r}")
    check_int("segment_len", segment_len, minimum=1)
    check_int("num_segments", num_segments, minimum=1)
    check_int("max_mem_len", max_mem_len, minimum=1)
    model = build_xl_model(max_mem_len=max_mem_len, dtype=dtype, **CONFIGS[config]).to(device)
    tokens = example_tokens(segment_len * num_segments).to(device)
    diffs = []
    with torch.no_grad(), one_cpu_thread():
        full = model(tokens)
        mems = [torch.zeros(1, max_mem_len, DIM, dtype=dtype, device=device) for _ in range(DEPTH)] \
            if start_from_zeros else None
        for s in range(num_segments):
            part = slice(s * segment_len, (s + 1) * segment_len)
            logits, mems = model(tokens[:, part], mems=mems, return_mems=True)
            diffs.append((logits - full[:, part]).abs().max().item())
    return SegmentedProof(config, start_from_zeros, segment_len, num_segments, max_mem_len, np.array(diffs))


@dataclass(frozen=True)
class EmptyMemories:
    """``mems=None`` against explicit all-zero memories, with and without the empty-memory mask.

    Attributes:
        num_mems: M zero slots per layer. max_abs_diff: {"mask on": x, "mask off": y} over the logits.
        weights: {"none": (T, T), "mask on": (T, M + T), "mask off": (T, M + T)} attention weights of the
            first attention layer, averaged over heads.
        memory_weight: {"mask on": x, "mask off": y} total weight the queries give to memory columns (mean
            over queries).
        weights_reproduce_layer: the weights, times the values, give the layer's own output (checked to 1e-10).
    """

    num_mems: int
    seq_len: int
    max_abs_diff: dict[str, float]
    weights: dict[str, np.ndarray]
    memory_weight: dict[str, float]
    weights_reproduce_layer: bool


def attention_weights(model: TransformerWrapper, tokens: torch.Tensor, mems: list[torch.Tensor] | None):
    """Softmax weights of the first self-attention layer, from the model's own modules.

    SDPA does not return its weights, so this asks the layer for them (``SelfAttention.attention_weights``)
    and checks that they reproduce the layer's output.

    Returns: (weights (b, h, T, M + T), reproduces: bool).
    """
    layers = model.attn_layers
    block = layers.layers[0]
    attn = block.fn
    x = model.token_emb(tokens)  # rotary model: no absolute positions
    b, t, dim = x.shape
    normed = block.norm(x)
    mem = mems[0] if mems is not None else None
    key_mask = layers.key_mask(mem, None, None, b, t)
    weights = attn.attention_weights(normed, mem, key_mask)
    _, _, v = attn.project(normed, mem)
    out = attn.to_out((weights @ v).transpose(1, 2).reshape(b, t, dim))
    reference = attn(normed, mem=mem, key_mask=key_mask)
    return weights, bool(torch.allclose(out, reference, atol=1e-10, rtol=0))


def empty_memories(num_mems: int = 4, seq_len: int = 8) -> EmptyMemories:
    """Compare ``mems=None`` with M all-zero memory slots per layer, mask on (the fix) and off (the bug)."""
    check_int("num_mems", num_mems, minimum=1)
    check_int("seq_len", seq_len, minimum=1)
    tokens = example_tokens(seq_len)
    zeros = [torch.zeros(1, num_mems, DIM, dtype=torch.float64) for _ in range(DEPTH)]
    diffs, weights, memory_weight, reproduce = {}, {}, {}, []
    with torch.no_grad(), one_cpu_thread():
        base_model = build_xl_model()
        base = base_model(tokens)
        w, ok = attention_weights(base_model, tokens, None)
        weights["none"], reproduce = w[0].mean(0).numpy(), [ok]
        for label, mask in (("mask on", True), ("mask off", False)):
            model = build_xl_model(mask_empty_mems=mask)
            diffs[label] = (model(tokens, mems=zeros) - base).abs().max().item()
            w, ok = attention_weights(model, tokens, zeros)
            weights[label] = w[0].mean(0).numpy()
            memory_weight[label] = float(w[0, :, :, :num_mems].sum(-1).mean())
            reproduce.append(ok)
    return EmptyMemories(num_mems, seq_len, diffs, weights, memory_weight, all(reproduce))
