"""The lab 04 specimen: one small model that holds every kind of parameter the weight-decay folklore talks about.

An xtlab stack uses one norm type throughout, so the specimen pairs two tiny language models — one with
RMSNorm, one with ScaleNorm — and averages their logits. Each has memory tokens, attention memory key/values,
biases (feed-forward), a learned absolute position embedding and a tied token embedding.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from xtlab.model import Decoder, TransformerWrapper
from xtlab.seeding import seed_everything

SPECIMEN_VOCAB = 44  # the bundled corpus's vocabulary size
SPECIMEN_SEQ_LEN = 32


def small_lm(norm: str = "rmsnorm", *, num_tokens: int = SPECIMEN_VOCAB, dim: int = 32, depth: int = 1,
             norm_unit_offset: bool = False) -> TransformerWrapper:
    """A tiny xtlab LM with 2 memory tokens, 2 attention memory key/values and a tied embedding.

    Args:
        norm: ``"rmsnorm"``, ``"scalenorm"`` or ``"layernorm"``.
        norm_unit_offset: store norm gains as offsets from 1 (initialised at 0).
    """
    if norm not in ("rmsnorm", "scalenorm", "layernorm"):
        raise ValueError(f"norm must be 'rmsnorm', 'scalenorm' or 'layernorm', but got {norm!r}")
    stack = Decoder(dim, depth, 2, use_rmsnorm=norm == "rmsnorm", use_scalenorm=norm == "scalenorm",
                    norm_unit_offset=norm_unit_offset, attn_num_mem_kv=2)
    return TransformerWrapper(num_tokens, SPECIMEN_SEQ_LEN, stack, num_memory_tokens=2, tie_embedding=True)


class TwoNormLM(nn.Module):
    """Two tiny LMs (RMSNorm and ScaleNorm) whose logits are averaged: every special parameter in one model.

    Shape: forward x (b, n) token ids -> logits (b, n, num_tokens).
    """

    def __init__(self, num_tokens: int = SPECIMEN_VOCAB, dim: int = 32, depth: int = 1, norm_unit_offset: bool = False):
        super().__init__()
        self.rmsnorm_lm = small_lm("rmsnorm", num_tokens=num_tokens, dim=dim, depth=depth,
                                   norm_unit_offset=norm_unit_offset)
        self.scalenorm_lm = small_lm("scalenorm", num_tokens=num_tokens, dim=dim, depth=depth,
                                     norm_unit_offset=norm_unit_offset)

    def forward(self, x: Tensor) -> Tensor:
        return 0.5 * (self.rmsnorm_lm(x) + self.scalenorm_lm(x))


def specimen_model(seed: int = 0, norm_unit_offset: bool = False) -> TwoNormLM:
    """The lab's ``TwoNormLM``, seeded and built on the CPU (move it with ``.to(device)``)."""
    seed_everything(seed)
    with torch.device("cpu"):
        return TwoNormLM(norm_unit_offset=norm_unit_offset)


def xtransformers_specimen(seed: int = 0, use_scalenorm: bool = False) -> nn.Module:
    """A real ``x_transformers`` LM with memory tokens, attention memory key/values, RMSNorm (or ScaleNorm) and a
    tied embedding, seeded and built on the CPU."""
    from x_transformers import Decoder as XDecoder
    from x_transformers import TransformerWrapper as XTransformerWrapper

    seed_everything(seed)
    norm = {"use_scalenorm": True} if use_scalenorm else {"use_rmsnorm": True}
    with torch.device("cpu"):
        return XTransformerWrapper(num_tokens=SPECIMEN_VOCAB, max_seq_len=SPECIMEN_SEQ_LEN, num_memory_tokens=2,
                                   tie_embedding=True,
                                   attn_layers=XDecoder(dim=32, depth=1, heads=2, attn_num_mem_kv=2, **norm))
