"""The five models lab 04 runs the article's recipe on, small, seeded and built on the CPU.

- ``xtlab decoder``: an xtlab LM with memory tokens and attention memory key/values (LayerNorm, the default);
- ``x-transformers decoder``: the same configuration in ``x_transformers``, at equal size;
- ``x-transformers, direct gains``: the same with its norm gains stored directly (``norm_add_unit_offset=False``);
- ``torch nn.Transformer``: PyTorch's own encoder-decoder (nn.LayerNorm, nn.MultiheadAttention);
- ``tied by assignment``: the xtlab decoder with ``to_logits.weight = token_emb.weight`` (one Parameter seen
  under two modules).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import torch
from torch import nn

from xtlab._checks import check_choice, check_int, check_module
from xtlab.model import AttentionLayers, Decoder, TransformerWrapper, tie_naively
from xtlab.seeding import seed_everything

VOCAB, SEQ_LEN, DIM, DEPTH, HEADS, MEMORY = 44, 32, 32, 1, 2, 2  # 44: the bundled corpus's vocabulary


def _head_size(dim: int, heads: int) -> dict[str, int]:
    """``attn_dim_head=dim // heads`` where xtlab takes it (its default is 64, as in x-transformers)."""
    if "attn_dim_head" in inspect.signature(AttentionLayers.__init__).parameters:
        return {"attn_dim_head": dim // heads}
    return {}


def xtlab_decoder(seed: int = 0, dim: int = DIM, depth: int = DEPTH) -> TransformerWrapper:
    """An xtlab decoder LM with 2 memory tokens and 2 attention memory key/values per layer (untied)."""
    check_int("dim", dim, minimum=HEADS)
    check_int("depth", depth, minimum=1)
    seed_everything(seed)
    with torch.device("cpu"):
        stack = Decoder(dim, depth, HEADS, attn_num_mem_kv=MEMORY, **_head_size(dim, HEADS))
        return TransformerWrapper(VOCAB, SEQ_LEN, stack, num_memory_tokens=MEMORY)


def xtransformers_decoder(seed: int = 0, dim: int = DIM, depth: int = DEPTH, unit_offset: bool = True) -> nn.Module:
    """The same LM in ``x_transformers`` (``attn_dim_head=dim // heads``, so both hold the same parameter count);
    ``unit_offset=False`` stores its norm gains directly (``norm_add_unit_offset=False``) instead of as offsets."""
    from x_transformers import Decoder as XDecoder
    from x_transformers import TransformerWrapper as XTransformerWrapper

    check_int("dim", dim, minimum=HEADS)
    check_int("depth", depth, minimum=1)
    seed_everything(seed)
    with torch.device("cpu"):
        stack = XDecoder(dim=dim, depth=depth, heads=HEADS, attn_dim_head=dim // HEADS, attn_num_mem_kv=MEMORY,
                         norm_add_unit_offset=unit_offset)
        return XTransformerWrapper(num_tokens=VOCAB, max_seq_len=SEQ_LEN, num_memory_tokens=MEMORY,
                                   attn_layers=stack)


def torch_transformer(seed: int = 0) -> nn.Transformer:
    """``torch.nn.Transformer`` with one encoder and one decoder layer of width ``DIM``."""
    seed_everything(seed)
    with torch.device("cpu"):
        return nn.Transformer(d_model=DIM, nhead=HEADS, num_encoder_layers=DEPTH, num_decoder_layers=DEPTH,
                              dim_feedforward=4 * DIM, batch_first=True)


def tied_by_assignment(seed: int = 0) -> TransformerWrapper:
    """The xtlab decoder tied by plain assignment: ``to_logits.weight`` *is* ``token_emb.weight``."""
    return tie_naively(xtlab_decoder(seed))


def xtransformers_direct_gains(seed: int = 0) -> nn.Module:
    """The x-transformers decoder with its norm gains stored directly (``norm_add_unit_offset=False``)."""
    return xtransformers_decoder(seed, unit_offset=False)


MODELS: dict[str, Callable[[], nn.Module]] = {
    "xtlab decoder": xtlab_decoder,
    "x-transformers decoder": xtransformers_decoder,
    "x-transformers, direct gains": xtransformers_direct_gains,
    "torch nn.Transformer": torch_transformer,
    "tied by assignment": tied_by_assignment,
}


def build_model(name: str, seed: int = 0) -> nn.Module:
    """One of ``MODELS`` by name, seeded."""
    check_choice("name", name, list(MODELS))
    return MODELS[name](seed)


def parameter_count(model: nn.Module) -> tuple[int, int]:
    """``(tensors, elements)`` of the model's distinct parameters (a tied Parameter counted once)."""
    check_module("model", model)
    parameters = list(model.parameters())
    return len(parameters), sum(p.numel() for p in parameters)
