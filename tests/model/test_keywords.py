"""Every x-transformers ``AttentionLayers``/``Decoder``, ``TransformerWrapper`` and ``XTransformer`` keyword:
mirrored with the same default, or refused by name."""

from __future__ import annotations

import inspect
import re

import pytest
import x_transformers as X
from x_transformers.x_transformers import Attention
from x_transformers.x_transformers import AttentionLayers as XAttentionLayers
from x_transformers.x_transformers import FeedForward as XFeedForward

from xtlab.model import AttentionLayers, Decoder, Encoder, TransformerWrapper, XTransformer
from xtlab.model import xtransformer as xtlab_xtransformer
from xtlab.model.attention_layers import ACCEPTED_KEYWORDS
from xtlab.model.keywords import (
    TRANSFORMER_WRAPPER_KEYWORDS,
    X_TRANSFORMERS_KEYWORDS,
    XTRANSFORMER_KEYWORDS,
    XTRANSFORMER_WRAPPER_KEYWORDS,
    xtransformer_keywords,
)
from xtlab.model.transformer_wrapper import WRAPPER_KEYWORDS


def _params(fn, skip):
    return {n: p.default for n, p in inspect.signature(fn).parameters.items()
            if n not in skip and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}


def x_transformers_keywords() -> dict:
    """Keyword -> default, from the installed x-transformers: the stack's own, then attn_/cross_attn_/ff_
    prefixed ones of the modules it builds (minus what the stack sets itself)."""
    own = _params(XAttentionLayers.__init__, {"self"})
    attn = _params(Attention.__init__, {"self", "dim", "heads", "causal", "qkv_receive_diff_residuals",
                                        "learned_value_residual_mix", "rotate_num_heads", "output_proj_depth"})
    cross = _params(Attention.__init__, {"self", "dim", "heads", "output_proj_depth"})
    ff = _params(XFeedForward.__init__, {"self", "dim", "output_proj_depth"})
    return {**own, **{f"attn_{k}": v for k, v in attn.items()}, **{f"cross_attn_{k}": v for k, v in cross.items()},
            **{f"ff_{k}": v for k, v in ff.items()}}


XT_KEYWORDS = x_transformers_keywords()
LACKING = sorted(set(XT_KEYWORDS) - set(ACCEPTED_KEYWORDS))


def test_the_stored_keyword_list_is_x_transformers_own():
    assert set(XT_KEYWORDS) == X_TRANSFORMERS_KEYWORDS


@pytest.mark.parametrize("keyword", LACKING)
def test_every_x_transformers_keyword_xtlab_lacks_is_refused_by_name(keyword):
    with pytest.raises(TypeError) as caught:
        Decoder(dim=32, depth=1, heads=2, **{keyword: True})
    message = str(caught.value)
    assert repr(keyword) in message and "xtlab does not model" in message


def test_the_refusal_list_is_substantial():
    """Guards the parametrisation above against an empty list (a test that could not fail)."""
    assert len(LACKING) > 200 and "attn_flash" not in LACKING and "attn_qk_norm" in LACKING


@pytest.mark.parametrize("wrong, right", [("rotary_pos_embed", "rotary_pos_emb"), ("attn_dim_heads", "attn_dim_head"),
                                          ("layer_dropuot", "layer_dropout"), ("ff_mul", "ff_mult")])
def test_a_misspelt_keyword_suggests_the_closest(wrong, right):
    with pytest.raises(TypeError, match=f"unknown keyword '{wrong}'; did you mean '{right}'"):
        Encoder(dim=32, depth=1, heads=2, **{wrong: 1})


def test_mirrored_keywords_take_x_transformers_defaults():
    ours = _params(AttentionLayers.__init__, {"self"})
    mirrored = set(ours) & set(XT_KEYWORDS) - {"dim", "depth"}
    assert {"heads", "causal", "attn_dim_head", "rotary_emb_dim", "ff_mult", "norm_add_unit_offset",
            "attn_num_mem_kv", "pre_norm_has_final_norm", "ff_no_bias"} <= mirrored
    for name in mirrored:
        assert ours[name] == XT_KEYWORDS[name], name


def test_wrapper_defaults_match():
    ours = _params(TransformerWrapper.__init__, {"self"})
    theirs = _params(X.TransformerWrapper.__init__, {"self"})
    for name in ("max_mem_len", "emb_dropout", "tie_embedding", "tie_embedding_scale", "return_only_embed"):
        assert ours[name] == theirs[name], name
    assert ours["num_memory_tokens"] == 0 and theirs["num_memory_tokens"] is None  # None means 0 there


# TransformerWrapper and XTransformer

XT_WRAPPER_KEYWORDS = _params(X.TransformerWrapper.__init__, {"self"})
WRAPPER_LACKING = sorted(set(XT_WRAPPER_KEYWORDS) - set(WRAPPER_KEYWORDS))
XT_XTRANSFORMER_KEYWORDS = _params(X.XTransformer.__init__, {"self"})
XTRANSFORMER_ACCEPTED = set(xtlab_xtransformer.ACCEPTED_KEYWORDS)
XTRANSFORMER_LACKING = sorted(set(XTRANSFORMER_KEYWORDS) - XTRANSFORMER_ACCEPTED)
XT_SIZES = dict(dim=32, enc_num_tokens=10, enc_depth=1, enc_heads=2, enc_max_seq_len=8, dec_num_tokens=10,
                dec_depth=1, dec_heads=2, dec_max_seq_len=8)


def x_transformers_wrapper_picks() -> dict[str, set[str]]:
    """The prefixed keywords x-transformers' XTransformer hands to each TransformerWrapper (read from its
    source: ``pick_and_pop([...], enc_kwargs)`` and ``enc_kwargs.pop('...')``); all others go to the stack."""
    source = inspect.getsource(X.XTransformer.__init__)
    picks = {}
    for prefix in ("enc", "dec"):
        listed = re.search(rf"pick_and_pop\(\[([^\]]*)\],\s*{prefix}_kwargs\)", source)
        popped = re.findall(rf"{prefix}_kwargs\.pop\(\s*'(\w+)'", source)
        picks[f"{prefix}_"] = set(re.findall(r"'(\w+)'", listed.group(1) if listed else "")) | set(popped)
    return picks


def test_the_stored_wrapper_keyword_lists_are_x_transformers_own():
    assert set(XT_WRAPPER_KEYWORDS) == set(TRANSFORMER_WRAPPER_KEYWORDS)
    assert set(XT_XTRANSFORMER_KEYWORDS) == set(XTRANSFORMER_KEYWORDS)
    picks = x_transformers_wrapper_picks()
    assert {"num_tokens", "max_seq_len", "emb_dropout"} <= picks["dec_"]  # the source parse found them
    assert picks == {prefix: set(names) for prefix, names in XTRANSFORMER_WRAPPER_KEYWORDS.items()}


def test_the_accepted_lists_are_xtlab_s_signatures():
    """The did-you-mean lists name exactly what the classes take, so a new xtlab keyword cannot be refused."""
    assert set(WRAPPER_KEYWORDS) == set(_params(TransformerWrapper.__init__, {"self"}))
    own = set(_params(XTransformer.__init__, {"self"}))
    assert own <= XTRANSFORMER_ACCEPTED
    unprefixed = {k for k in XTRANSFORMER_ACCEPTED if not k.startswith(("enc_", "dec_"))}
    assert unprefixed == {k for k in own if not k.startswith(("enc_", "dec_"))} == {"dim", "tie_token_emb",
                                                                                  "encoder_keeps_logits"}


@pytest.mark.parametrize("keyword", WRAPPER_LACKING)
def test_every_x_transformers_wrapper_keyword_xtlab_lacks_is_refused_by_name(keyword):
    with pytest.raises(TypeError) as caught:
        TransformerWrapper(10, 8, Decoder(dim=32, depth=1, heads=2), **{keyword: True})
    message = str(caught.value)
    assert repr(keyword) in message and "xtlab does not model" in message


@pytest.mark.parametrize("keyword", XTRANSFORMER_LACKING)
def test_every_x_transformers_xtransformer_keyword_xtlab_lacks_is_refused_by_name(keyword):
    with pytest.raises(TypeError) as caught:
        XTransformer(**XT_SIZES, **{keyword: 1})
    message = str(caught.value)
    assert repr(keyword) in message and "xtlab does not model" in message


def test_every_prefixed_x_transformers_keyword_xtlab_lacks_is_refused_by_name():
    """``enc_``/``dec_`` + a stack or wrapper keyword: some 600, checked in one loop (each fails before any build)."""
    lacking = sorted(xtransformer_keywords() - set(XTRANSFORMER_KEYWORDS) - XTRANSFORMER_ACCEPTED)
    assert len(lacking) > 400 and "enc_attn_qk_norm" in lacking and "dec_use_abs_pos_emb" in lacking
    assert "enc_rotary_pos_emb" not in lacking and "dec_num_tokens" not in lacking
    not_refused = []
    for keyword in lacking:
        try:
            XTransformer(**XT_SIZES, **{keyword: True})
            not_refused.append(keyword)
        except TypeError as error:
            if repr(keyword) not in str(error) or "xtlab does not model" not in str(error):
                not_refused.append(keyword)
    assert not_refused == []


def test_the_wrapper_refusal_lists_are_substantial():
    """Guards the parametrisations above against empty lists (tests that could not fail)."""
    assert len(WRAPPER_LACKING) > 25 and "post_emb_norm" in WRAPPER_LACKING and "tie_embedding" not in WRAPPER_LACKING
    assert XTRANSFORMER_LACKING == ["cross_attn_tokens_dropout", "ignore_index", "pad_value"]


@pytest.mark.parametrize("build, wrong, right", [
    ("wrapper", "tie_embeding", "tie_embedding"), ("wrapper", "num_memory_token", "num_memory_tokens"),
    ("xtransformer", "tie_token_embs", "tie_token_emb"), ("xtransformer", "enc_rotary_pos_embed", "enc_rotary_pos_emb"),
    ("xtransformer", "depth", "enc_depth"), ("xtransformer", "dec_layer_dropuot", "dec_layer_dropout")])
def test_a_misspelt_wrapper_keyword_suggests_the_closest(build, wrong, right):
    owner = "TransformerWrapper" if build == "wrapper" else "XTransformer"
    with pytest.raises(TypeError, match=f"{owner} got an unknown keyword '{wrong}'; did you mean '{right}'"):
        if build == "wrapper":
            TransformerWrapper(10, 8, Decoder(dim=32, depth=1, heads=2), **{wrong: 1})
        else:
            XTransformer(**XT_SIZES, **{wrong: 1})


def test_a_stack_keyword_given_to_the_wrapper_says_where_it_belongs():
    with pytest.raises(TypeError, match="'rotary_pos_emb', a keyword of the attention stack: pass it to the Decoder"):
        TransformerWrapper(10, 8, Decoder(dim=32, depth=1, heads=2), rotary_pos_emb=True)


def test_an_unprefixed_unknown_xtransformer_keyword_says_how_to_route_it():
    with pytest.raises(TypeError, match="unknown keyword 'zzz'; XTransformer's own keywords are .* 'enc_' .* 'dec_'"):
        XTransformer(**XT_SIZES, zzz=1)


def test_xtransformer_defaults_match():
    ours = _params(XTransformer.__init__, {"self"})
    assert ours["tie_token_emb"] == XT_XTRANSFORMER_KEYWORDS["tie_token_emb"]
    heads = _params(XAttentionLayers.__init__, {"self"})["heads"]
    assert ours["enc_heads"] == ours["dec_heads"] == heads
