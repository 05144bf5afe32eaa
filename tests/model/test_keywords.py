"""Every x-transformers ``AttentionLayers``/``Decoder`` keyword: mirrored with the same default, or refused by name."""

from __future__ import annotations

import inspect

import pytest
import x_transformers as X
from x_transformers.x_transformers import Attention
from x_transformers.x_transformers import AttentionLayers as XAttentionLayers
from x_transformers.x_transformers import FeedForward as XFeedForward

from xtlab.model import AttentionLayers, Decoder, Encoder, TransformerWrapper
from xtlab.model.attention_layers import ACCEPTED_KEYWORDS
from xtlab.model.keywords import X_TRANSFORMERS_KEYWORDS


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
