"""Lab 03's tiny rotary XL decoder and its tokens: float64 on the CPU, so every printed number is the same on
every machine.

The model's norm gains are drawn at random (seeded) instead of left at 1: a trained model's gains are not 1, and
with unit gains normalising twice would be almost the identity, hiding one of the broken designs.
"""

from __future__ import annotations

import inspect

import torch

from xtlab._checks import check_int
from xtlab.model import AttentionLayers, Decoder, TransformerWrapper
from xtlab.seeding import seed_everything

NUM_TOKENS = 64
DIM, DEPTH, HEADS = 32, 2, 2
EXACT_TOLERANCE = 1e-12  # float64 rounding of this tiny model is ~1e-15; a real difference is >= 1e-6
GAIN_SPREAD = 0.5  # effective norm gains drawn as 1 + GAIN_SPREAD * N(0, 1)


def size_kwargs(dim: int = DIM, heads: int = HEADS) -> dict[str, int]:
    """``attn_dim_head=dim // heads`` when xtlab's ``AttentionLayers`` takes it (x-transformers' default head size
    is 64, which would make this tiny model's attention 4x wider), else nothing."""
    if "attn_dim_head" in inspect.signature(AttentionLayers.__init__).parameters:
        return {"attn_dim_head": dim // heads}
    return {}


def build_xl_model(*, mem_positions: str = "continuous", mask_empty_mems: bool = True, mem_record: str = "normed",
                   max_mem_len: int = 64, unit_gains: bool = False, seed: int = 0,
                   dtype: torch.dtype = torch.float64) -> TransformerWrapper:
    """A tiny rotary XL decoder (dim 32, depth 2, 2 heads) in eval mode.

    The switches change no parameter, so one seed gives the same weights for every configuration.

    Args:
        mem_positions, mask_empty_mems, mem_record: xtlab's teaching switches (see ``AttentionLayers``).
        max_mem_len: memory kept per attention layer.
        unit_gains: keep every norm gain at 1 (initialisation) instead of drawing it.
        seed: weights and gains.
    """
    check_int("seed", seed, minimum=0)
    seed_everything(seed)
    layers = Decoder(DIM, DEPTH, HEADS, rotary_pos_emb=True, mem_positions=mem_positions,
                     mask_empty_mems=mask_empty_mems, mem_record=mem_record, **size_kwargs())
    model = TransformerWrapper(NUM_TOKENS, 256, layers, max_mem_len=max_mem_len)
    if not unit_gains:
        generator = torch.Generator().manual_seed(seed + 1)
        norms = [block.norm for block in layers.layers] + [layers.final_norm]
        with torch.no_grad():
            for norm in norms:
                base = 0.0 if getattr(norm, "unit_offset", False) else 1.0  # a gain stored as an offset from 1
                for gain in norm.parameters():
                    gain.copy_(base + GAIN_SPREAD * torch.randn(gain.shape, generator=generator))
    return model.to(dtype).eval()


def example_tokens(length: int, seed: int = 1, batch: int = 1) -> torch.Tensor:
    """(batch, length) token ids, drawn on the CPU so every device sees the same sequence."""
    check_int("length", length, minimum=1)
    check_int("batch", batch, minimum=1)
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, NUM_TOKENS, (batch, length), generator=generator)


def shown_diff(diff: float) -> str:
    """A max |difference| as printed: ``"< 1e-12"`` at float64 rounding (whose last digits vary by machine),
    else two significant digits."""
    if isinstance(diff, bool) or not isinstance(diff, (int, float)):
        raise TypeError(f"diff must be a number, but got {type(diff).__name__}: {diff!r:.80}")
    return "< 1e-12" if diff < EXACT_TOLERANCE else f"{diff:.2g}"
