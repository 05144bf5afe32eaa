"""xtlab against x-transformers: same arguments -> same model, same weights -> same numbers.

Each configuration is built in both libraries from the same keywords; the parameter counts and every
tensor's shape must agree (through ``xtlab.interop``'s name mapping), and with x-transformers' weights
loaded, the float32 logits must agree to 1e-4. Where the two differ by design, or by an x-transformers bug a
lab teaches, a test below pins the difference and says why.
"""

from __future__ import annotations

import random

import pytest
import torch
import x_transformers as X

from xtlab import Decoder, Encoder, TransformerWrapper
from xtlab.interop import load_x_transformers, memories_from_x_transformers, twin_of, xtlab_state_dict

NUM_TOKENS, MAX_SEQ_LEN, DIM, DEPTH, HEADS = 50, 32, 32, 2, 2
TOL = 1e-4

# name -> (stack keywords, wrapper keywords, encoder?)
CONFIGS = {
    "decoder": ({}, {}, False),
    "encoder": ({}, {}, True),
    "cross_attention": ({"cross_attend": True}, {}, False),
    "rotary": ({"rotary_pos_emb": True}, {}, False),
    "rotary_full_head": ({"rotary_pos_emb": True, "rotary_emb_dim": 64}, {}, False),
    "xl_memories": ({"rotary_pos_emb": True}, {"max_mem_len": 6}, False),
    "memory_tokens": ({}, {"num_memory_tokens": 3}, False),
    "attn_num_mem_kv": ({"rotary_pos_emb": True, "attn_num_mem_kv": 2}, {}, False),
    "cross_attention_mem_kv": ({"cross_attend": True, "attn_num_mem_kv": 2}, {}, False),
    "tied_embedding": ({}, {"tie_embedding": True}, False),
    "rmsnorm": ({"use_rmsnorm": True}, {}, False),
    "scalenorm": ({"use_scalenorm": True, "rotary_pos_emb": True}, {}, False),
    "sizes": ({"attn_dim_head": 16, "ff_mult": 2, "ff_no_bias": True, "norm_add_unit_offset": False}, {}, False),
}


def build_pair(stack_kw: dict, wrapper_kw: dict, encoder: bool, dim: int = DIM, depth: int = DEPTH,
               heads: int = HEADS):
    """The same call in both libraries: (xtlab model, x-transformers model), both in eval mode."""
    torch.manual_seed(0)
    xt_stack = (X.Encoder if encoder else X.Decoder)(dim=dim, depth=depth, heads=heads, **stack_kw)
    xt_model = X.TransformerWrapper(num_tokens=NUM_TOKENS, max_seq_len=MAX_SEQ_LEN, attn_layers=xt_stack,
                                    **wrapper_kw).eval()
    with torch.no_grad():  # move every gain off its init, so a misplaced norm or offset shows in the logits
        for p in xt_model.parameters():
            if p.ndim <= 1:
                p.normal_(0, 0.5)
    stack = (Encoder if encoder else Decoder)(dim=dim, depth=depth, heads=heads, **stack_kw)
    model = TransformerWrapper(NUM_TOKENS, MAX_SEQ_LEN, stack, **wrapper_kw).eval()
    return model, xt_model


def count(module) -> int:
    return sum(p.numel() for p in module.parameters())


def inputs(cross: bool, batch: int = 2, n: int = 12):
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, NUM_TOKENS, (batch, n), generator=g)
    return x, ({"context": torch.randn(batch, 5, DIM, generator=g)} if cross else {})


@pytest.mark.parametrize("name", CONFIGS)
def test_same_arguments_build_the_same_model(name):
    model, xt_model = build_pair(*CONFIGS[name])
    assert count(model) == count(xt_model)
    mapped = xtlab_state_dict(model, xt_model)  # raises on any unmapped entry or shape mismatch
    own = model.state_dict()
    assert set(mapped) == set(own)
    assert all(mapped[k].shape == own[k].shape for k in own)


@pytest.mark.parametrize("name", CONFIGS)
def test_same_weights_give_the_same_logits(name):
    stack_kw, wrapper_kw, encoder = CONFIGS[name]
    model, xt_model = build_pair(stack_kw, wrapper_kw, encoder)
    load_x_transformers(model, xt_model)
    x, extra = inputs(stack_kw.get("cross_attend", False))
    with torch.no_grad():
        diff = (model(x, **extra) - xt_model(x, **extra)).abs().max().item()
    assert diff <= TOL, f"{name}: max abs logit difference {diff:.3g}"


def test_the_issue_example_has_the_x_transformers_parameter_count():
    """``Decoder(dim=128, depth=4, heads=8)``: 48% apart before attn_dim_head=64 was the default."""
    model, xt_model = build_pair({}, {}, False, dim=128, depth=4, heads=8)
    assert count(model.attn_layers) == count(xt_model.attn_layers) == 1_576_576
    assert count(model) == count(xt_model)


def test_twin_of_rebuilds_the_model_from_x_transformers_alone():
    _, xt_model = build_pair({"rotary_pos_emb": True, "attn_num_mem_kv": 2, "use_rmsnorm": True},
                             {"num_memory_tokens": 2, "tie_embedding": True}, False)
    twin = twin_of(xt_model).eval()
    assert count(twin) == count(xt_model)
    x, _ = inputs(False)
    with torch.no_grad():
        assert (twin(x) - xt_model(x)).abs().max().item() <= TOL


def test_twin_of_refuses_a_feature_xtlab_does_not_model():
    xt_model = X.TransformerWrapper(num_tokens=10, max_seq_len=8, post_emb_norm=True,
                                    attn_layers=X.Decoder(dim=16, depth=1, heads=2))
    with pytest.raises(ValueError, match="post_emb_norm"):
        twin_of(xt_model)
    xt_model = X.TransformerWrapper(num_tokens=10, max_seq_len=8,
                                    attn_layers=X.Decoder(dim=16, depth=1, heads=2, attn_qk_norm_dim_scale=True,
                                                          attn_qk_norm=True, attn_dim_head=8))
    with pytest.raises(ValueError, match="does not model.*qk_norm"):
        xtlab_state_dict(TransformerWrapper(10, 8, Decoder(16, 1, 2, attn_dim_head=8)), xt_model)


def test_xl_memories_and_the_segment_after_them_agree():
    """Same memories (up to where each library normalises them) and the same logits on the next segment."""
    model, xt_model = build_pair({"rotary_pos_emb": True, "attn_num_mem_kv": 1}, {"max_mem_len": 6}, False)
    load_x_transformers(model, xt_model)
    g = torch.Generator().manual_seed(2)
    first, second = (torch.randint(0, NUM_TOKENS, (2, 8), generator=g) for _ in range(2))
    with torch.no_grad():
        out, mems = model(first, return_mems=True)
        xt_out, xt_mems = xt_model(first, return_mems=True)
        assert (out - xt_out).abs().max().item() <= TOL
        converted = memories_from_x_transformers(model, xt_mems)
        assert [m.shape for m in mems] == [m.shape for m in converted] == [(2, 6, DIM)] * DEPTH
        assert max((a - b).abs().max().item() for a, b in zip(mems, converted, strict=True)) <= TOL
        diff = (model(second, mems=mems) - xt_model(second, mems=xt_mems)).abs().max().item()
    assert diff <= TOL


def test_pinned_xl_memories_are_recorded_at_different_stages():
    """By design: x-transformers records each attention layer's input (the residual stream) and normalises it
    on use; xtlab records what attention reads (normalised). The raw tensors differ; the norm maps one onto the
    other (test above)."""
    model, xt_model = build_pair({}, {"max_mem_len": 6}, False)
    load_x_transformers(model, xt_model)
    x, _ = inputs(False, n=6)
    with torch.no_grad():
        _, mems = model(x, return_mems=True)
        _, xt_mems = xt_model(x, return_mems=True)
    assert (mems[1] - xt_mems[1]).abs().max().item() > 0.1


def test_pinned_memory_tokens_enter_x_transformers_xl_memories_but_not_xtlab_s():
    """By design: x-transformers records the whole stream, memory tokens included, so they also come back
    as XL memory slots; xtlab records only the sequence's own positions (memory tokens are learned and
    prepended anew every segment, recording them again would duplicate them)."""
    model, xt_model = build_pair({}, {"num_memory_tokens": 3, "max_mem_len": 32}, False)
    load_x_transformers(model, xt_model)
    x, _ = inputs(False, n=8)
    with torch.no_grad():
        _, mems = model(x, return_mems=True)
        _, xt_mems = xt_model(x, return_mems=True)
    assert mems[0].shape[1] == 8 and xt_mems[0].shape[1] == 8 + 3


def test_pinned_padded_queries_are_zeroed_by_x_transformers_only():
    """By design: x-transformers zeroes attention outputs at padded query positions; xtlab lets a padded query
    attend itself (never an all-masked softmax row). Real positions agree; padded ones differ."""
    model, xt_model = build_pair({}, {}, True)
    load_x_transformers(model, xt_model)
    x, _ = inputs(False, n=8)
    mask = torch.ones(2, 8, dtype=torch.bool)
    mask[:, 5:] = False
    with torch.no_grad():
        a, b = model(x, mask=mask), xt_model(x, mask=mask)
    assert (a[:, :5] - b[:, :5]).abs().max().item() <= TOL
    assert (a[:, 5:] - b[:, 5:]).abs().max().item() > 1e-2


def test_pinned_x_transformers_layer_dropout_misroutes_xl_memories():
    """An x-transformers bug (lab 03): a skipped layer ``continue``s before popping its memory and recording
    its new one, so it returns fewer memories than attention layers and, fed back, layer k reads layer k-1's.
    xtlab keeps one memory per attention layer, recorded even when the layer is skipped."""
    _, xt_model = build_pair({"layer_dropout": 0.5}, {"max_mem_len": 6}, False)
    xt_model.attn_layers.layer_dropouts = (1.0, 0.0, 0.0, 0.0)  # always skip the first attention block
    xt_model.train()
    x, _ = inputs(False, n=6)
    random.seed(0)
    with torch.no_grad():
        _, xt_mems = xt_model(x, return_mems=True)
    assert len(xt_mems) == DEPTH - 1  # the skipped layer recorded nothing: memories shift down a layer

    torch.manual_seed(0)
    model = TransformerWrapper(NUM_TOKENS, MAX_SEQ_LEN, Decoder(DIM, DEPTH, HEADS, layer_dropout=0.5),
                               max_mem_len=6).train()
    for seed in range(200):  # a seed whose draw skips the first attention block
        torch.manual_seed(seed)
        with torch.no_grad():
            _, mems = model(x, return_mems=True)
        if 0 in model.attn_layers.last_skipped:
            break
    assert 0 in model.attn_layers.last_skipped and len(mems) == DEPTH


def test_pinned_one_head_as_wide_as_the_model_has_no_output_projection_in_either():
    """x-transformers drops ``to_out`` when one head has nothing to mix; xtlab mirrors it with an identity."""
    model, xt_model = build_pair({"attn_dim_head": DIM}, {}, False, heads=1)
    assert count(model) == count(xt_model)
    assert isinstance(model.attn_layers.layers[0].fn.to_out, torch.nn.Identity)


def test_pinned_x_transformers_one_narrow_head_breaks_and_xtlab_projects():
    """An x-transformers bug: with heads=1 it drops ``to_out`` even when ``dim_head != dim``, so its forward
    fails on the residual add; xtlab keeps the projection."""
    model, xt_model = build_pair({"attn_dim_head": 16}, {}, False, heads=1)
    x, _ = inputs(False)
    with pytest.raises(RuntimeError):
        xt_model(x)
    assert model(x).shape == (2, 12, NUM_TOKENS)
    assert count(model) == count(xt_model) + 16 * DIM * DEPTH
