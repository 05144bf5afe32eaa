"""The models the capstone audits, tiny and seeded: an x-transformers ``TransformerWrapper`` with every feature
the course studied, a ``torch.nn.Transformer`` encoder-decoder, and TinyLM (``tiny_lm``)."""

from __future__ import annotations

import torch
from torch import nn

from xtlab._checks import check_bool, check_int
from xtlab.diagnostics.model_audit import Build

NUM_TOKENS, MAX_SEQ_LEN, MAX_MEM_LEN, DIM, DEPTH, HEADS, DIM_HEAD = 32, 16, 8, 32, 2, 2, 16
LAYER_DROPOUT, NUM_MEMORY_TOKENS, NUM_MEM_KV = 0.25, 2, 2


def x_transformers_recipe(*, memory_tokens: bool = True, memory_kv: bool = True) -> Build:
    """The x-transformers decoder the lab audits, as a picklable recipe (its tied output is a lambda, so the model
    itself does not pickle; the DDP step rebuilds it from this). ``memory_tokens=False`` / ``memory_kv=False``
    leave out the memory tokens / the attention memory key/values."""
    check_bool("memory_tokens", memory_tokens)
    check_bool("memory_kv", memory_kv)
    from x_transformers import Decoder, TransformerWrapper

    layers = Decoder(dim=DIM, depth=DEPTH, heads=HEADS, attn_dim_head=DIM_HEAD, rotary_pos_emb=True,
                     layer_dropout=LAYER_DROPOUT, attn_num_mem_kv=NUM_MEM_KV if memory_kv else 0, verbose=False)
    return Build(TransformerWrapper, {"num_tokens": NUM_TOKENS, "max_seq_len": MAX_SEQ_LEN, "max_mem_len": MAX_MEM_LEN,
                                      "num_memory_tokens": NUM_MEMORY_TOKENS if memory_tokens else 0,
                                      "tie_embedding": True, "attn_layers": layers})


def seeded(build, seed: int) -> nn.Module:
    """``build()`` with torch seeded by ``seed`` (global torch state put back afterwards)."""
    check_int("seed", seed, minimum=0)
    state = torch.get_rng_state()
    torch.manual_seed(seed)
    try:
        return build()
    finally:
        torch.set_rng_state(state)


def build_torch_transformer(seed: int = 0) -> nn.Transformer:
    """A one-layer ``torch.nn.Transformer`` (width 16, 2 heads, dropout 0.1, batch first)."""
    return seeded(lambda: nn.Transformer(d_model=16, nhead=2, num_encoder_layers=1, num_decoder_layers=1,
                                         dim_feedforward=32, dropout=0.1, batch_first=True), seed)


def parameter_count(model: nn.Module) -> int:
    """Trainable values, ties counted once."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def build_x_transformers(seed: int = 0, *, memory_tokens: bool = True,
                         memory_kv: bool = True) -> tuple[nn.Module, Build]:
    """``(model, recipe)``: the x-transformers decoder, seeded (the recipe's layers too), and its recipe."""
    recipe = seeded(lambda: x_transformers_recipe(memory_tokens=memory_tokens, memory_kv=memory_kv), seed)
    return seeded(recipe, seed + 1), recipe
