"""Small models the diagnostics tests point their instruments at: x-transformers models and, once it lands,
xtlab's own (skipped until ``xtlab.model`` exists)."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

NUM_TOKENS = 40
SEQ_LEN = 8


def x_decoder(*, tie_embedding: bool = False, use_scalenorm: bool = False, depth: int = 2) -> nn.Module:
    """An x-transformers decoder with memory tokens, attention memory key/values and RMSNorm (or ScaleNorm)."""
    from x_transformers import Decoder, TransformerWrapper

    norm = {"use_scalenorm": True} if use_scalenorm else {"use_rmsnorm": True}
    return TransformerWrapper(
        num_tokens=NUM_TOKENS,
        max_seq_len=SEQ_LEN,
        num_memory_tokens=2,
        tie_embedding=tie_embedding,
        attn_layers=Decoder(dim=32, depth=depth, heads=2, attn_num_mem_kv=2, **norm),
    )


def x_encoder_decoder(*, tie_token_emb: bool = True) -> nn.Module:
    """An x-transformers XTransformer (encoder-decoder); its two token embeddings are one Parameter when tied."""
    from x_transformers import XTransformer

    return XTransformer(
        dim=32, enc_num_tokens=NUM_TOKENS, enc_depth=1, enc_heads=2, enc_max_seq_len=SEQ_LEN,
        dec_num_tokens=NUM_TOKENS, dec_depth=1, dec_heads=2, dec_max_seq_len=SEQ_LEN, tie_token_emb=tie_token_emb,
        enc_num_memory_tokens=2, dec_attn_num_mem_kv=2, dec_use_rmsnorm=True,
    )


def xtlab_decoder(*, tie_embedding: bool = False, layer_dropout: float = 0.0, depth: int = 2) -> nn.Module:
    """xtlab's own decoder with every special parameter; skips the test until ``xtlab.model`` has landed."""
    model_api = pytest.importorskip("xtlab.model")
    if not hasattr(model_api, "TransformerWrapper"):
        pytest.skip("xtlab.model has not landed yet (no TransformerWrapper)")
    return model_api.TransformerWrapper(
        NUM_TOKENS,
        SEQ_LEN,
        model_api.Decoder(32, depth, 2, attn_num_mem_kv=2, use_rmsnorm=True, layer_dropout=layer_dropout),
        num_memory_tokens=2,
        tie_embedding=tie_embedding,
    )


def tokens(batch: int = 2, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, NUM_TOKENS, (batch, SEQ_LEN), generator=generator)


def language_model_loss(model: nn.Module, batch: torch.Tensor) -> torch.Tensor:
    """Next-token cross-entropy of a TransformerWrapper-like model on ``batch``, a (b, n) tensor of token ids."""
    logits = model(batch[:, :-1])
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1))


def encoder_decoder_batch() -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed ``(src, tgt)`` pair for :func:`encoder_decoder_loss`."""
    return tokens(seed=1), tokens(seed=2)


def encoder_decoder_loss(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """The scalar loss an XTransformer returns for ``batch = (src, tgt)``."""
    src, tgt = batch
    return model(src, tgt)


class WithUnusedHead(nn.Module):
    """Two linear layers, of which the forward pass only ever uses ``used``: ``unused_head`` gets no gradient."""

    def __init__(self) -> None:
        super().__init__()
        self.used = nn.Linear(4, 4)
        self.unused_head = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.used(x)
