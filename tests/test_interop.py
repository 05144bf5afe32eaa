"""xtlab against x-transformers: same arguments -> same model, same weights -> same numbers.

Each configuration (a ``TransformerWrapper`` or an encoder-decoder ``XTransformer``) is built in both
libraries from the same keywords; the parameter counts and every tensor's shape must agree (through
``xtlab.interop``'s name mapping), and with x-transformers' weights loaded, the float32 logits (and an
``XTransformer``'s loss) must agree to 1e-4. Where the two differ by design, or by an x-transformers bug a
lab teaches, a test below pins the difference and says why.
"""

from __future__ import annotations

import random

import pytest
import torch
import x_transformers as X

from xtlab import Decoder, Encoder, TransformerWrapper, XTransformer
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


# encoder-decoder: name -> XTransformer keywords beyond the sizes (the same call in both libraries)
XT_SIZES = dict(dim=DIM, enc_num_tokens=NUM_TOKENS, enc_depth=DEPTH, enc_heads=HEADS, enc_max_seq_len=16,
                dec_num_tokens=NUM_TOKENS, dec_depth=DEPTH, dec_heads=HEADS, dec_max_seq_len=16)
XT_CONFIGS = {
    "encoder_decoder": {},
    "tie_token_emb": {"tie_token_emb": True},
    "rotary_and_mem_kv": {"enc_rotary_pos_emb": True, "dec_rotary_pos_emb": True, "enc_attn_num_mem_kv": 2,
                          "dec_attn_num_mem_kv": 2},
    "memory_tokens_and_sizes": {"enc_num_memory_tokens": 2, "enc_attn_dim_head": 16, "dec_use_rmsnorm": True,
                                "dec_ff_mult": 2, "dec_ff_no_bias": True},
}


def build_xtransformer_pair(extra: dict, **sizes):
    """The same ``XTransformer`` call in both libraries: (xtlab model, x-transformers model), in eval mode."""
    kwargs = {**XT_SIZES, **sizes, **extra}
    torch.manual_seed(0)
    xt_model = X.XTransformer(**kwargs).eval()
    with torch.no_grad():  # gains off their init, as in build_pair
        for p in xt_model.parameters():
            if p.ndim <= 1:
                p.normal_(0, 0.5)
    return XTransformer(**kwargs).eval(), xt_model


def seq2seq_inputs(batch: int = 2, src_len: int = 10, tgt_len: int = 9):
    """src, tgt and a src mask whose first row ends in padding (the decoder's cross-attention must skip it)."""
    g = torch.Generator().manual_seed(3)
    src = torch.randint(0, NUM_TOKENS, (batch, src_len), generator=g)
    tgt = torch.randint(0, NUM_TOKENS, (batch, tgt_len), generator=g)
    mask = torch.ones(batch, src_len, dtype=torch.bool)
    mask[0, src_len - 3:] = False
    return src, tgt, mask


def xtransformer_logits(model, xt_model, src, tgt, mask):
    """Both decoders' logits for predicting tgt[:, 1:], each as its library's XTransformer computes them."""
    ours = model.decoder(tgt[:, :-1], context=model.encode(src, mask), context_mask=mask)
    encoded = xt_model.encoder(src, mask=mask, return_embeddings=True)
    theirs = xt_model.decoder.net(tgt, context=encoded, context_mask=mask)[:, :-1]
    return ours, theirs


@pytest.mark.parametrize("name", XT_CONFIGS)
def test_encoder_decoder_same_arguments_build_the_same_model(name):
    model, xt_model = build_xtransformer_pair(XT_CONFIGS[name])
    assert count(model) == count(xt_model)
    mapped = xtlab_state_dict(model, xt_model)
    own = model.state_dict()
    assert set(mapped) == set(own) and all(mapped[k].shape == own[k].shape for k in own)


@pytest.mark.parametrize("name", XT_CONFIGS)
def test_encoder_decoder_same_weights_give_the_same_logits_and_loss(name):
    model, xt_model = build_xtransformer_pair(XT_CONFIGS[name])
    load_x_transformers(model, xt_model)
    src, tgt, mask = seq2seq_inputs()
    with torch.no_grad():
        ours, theirs = xtransformer_logits(model, xt_model, src, tgt, mask)
        loss_diff = (model(src, tgt, mask=mask) - xt_model(src, tgt, mask=mask)).abs().item()
    diff = (ours - theirs).abs().max().item()
    assert diff <= TOL, f"{name}: max abs logit difference {diff:.3g}"
    assert loss_diff <= TOL, f"{name}: loss difference {loss_diff:.3g}"


def test_tie_token_emb_shares_one_embedding_in_both_libraries():
    model, xt_model = build_xtransformer_pair({"tie_token_emb": True})
    untied, _ = build_xtransformer_pair({})
    assert xt_model.decoder.net.token_emb is xt_model.encoder.token_emb
    load_x_transformers(model, xt_model)
    assert model.decoder.token_emb is model.encoder.token_emb
    assert count(untied) - count(model) == NUM_TOKENS * DIM


def test_twin_of_rebuilds_an_encoder_decoder_from_x_transformers_alone():
    _, xt_model = build_xtransformer_pair({"tie_token_emb": True, "dec_rotary_pos_emb": True,
                                           "enc_num_memory_tokens": 2, "dec_attn_num_mem_kv": 1})
    twin = twin_of(xt_model).eval()
    assert isinstance(twin, XTransformer) and twin.tie_token_emb
    assert count(twin) == count(xt_model)
    src, tgt, mask = seq2seq_inputs()
    with torch.no_grad():
        assert (twin(src, tgt, mask=mask) - xt_model(src, tgt, mask=mask)).abs().item() <= TOL
    start = tgt[:, :1]
    greedy = twin.generate(src, start, 6, mask=mask)
    assert torch.equal(greedy, xt_model.generate(src, start, 6, mask=mask, temperature=0.0))


def test_encoder_decoder_mismatches_are_refused():
    model, xt_model = build_xtransformer_pair({})
    _, tied_xt_model = build_xtransformer_pair({"tie_token_emb": True})
    with pytest.raises(ValueError, match="tie_token_emb: xtlab False, x-transformers True"):
        xtlab_state_dict(model, tied_xt_model)
    with pytest.raises(TypeError, match="xt_model must be an x-transformers XTransformer"):
        xtlab_state_dict(model, xt_model.encoder)
    dropping = X.XTransformer(**XT_SIZES, cross_attn_tokens_dropout=0.25)
    with pytest.raises(ValueError, match="cross_attn_tokens_dropout"):
        twin_of(dropping)


def test_pinned_x_transformers_decodes_every_target_and_xtlab_all_but_the_last():
    """By design: x-transformers' XTransformer runs its decoder over all T targets and drops the last logits,
    so T is at most dec_max_seq_len; xtlab feeds only the T - 1 inputs (the last target is never an input),
    so T may be dec_max_seq_len + 1. Same loss where both run (tests above)."""
    model, xt_model = build_xtransformer_pair({}, dec_max_seq_len=8)
    load_x_transformers(model, xt_model)
    src, tgt, mask = seq2seq_inputs(tgt_len=9)
    with torch.no_grad():
        assert torch.isfinite(model(src, tgt, mask=mask))
        with pytest.raises(AssertionError, match="max sequence length of 8"):
            xt_model(src, tgt, mask=mask)


def test_pinned_padded_targets_are_ignored_by_x_transformers_and_refused_by_xtlab():
    """By design: x-transformers' ignore_index (-100) marks padded targets it leaves out of the loss; xtlab
    models no padding in tgt (every id must be a token), so it refuses them rather than guess."""
    model, xt_model = build_xtransformer_pair({})
    load_x_transformers(model, xt_model)
    src, tgt, mask = seq2seq_inputs()
    padded = tgt.clone()
    padded[:, 6:] = -100
    with torch.no_grad():
        assert (xt_model(src, padded, mask=mask) - xt_model(src, tgt[:, :6], mask=mask)).abs().item() <= TOL
        with pytest.raises(ValueError, match="token id -100 is out of range"):
            model(src, padded, mask=mask)
