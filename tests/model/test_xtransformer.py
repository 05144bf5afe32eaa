"""Encoder–decoder: every parameter trains, except the encoder to_logits of the teaching bug."""

import pytest
import torch

from xtlab import XTransformer

CONFIG = dict(dim=32, enc_num_tokens=12, enc_depth=1, enc_heads=2, enc_max_seq_len=8,
              dec_num_tokens=12, dec_depth=1, dec_heads=2, dec_max_seq_len=9, enc_rotary_pos_emb=True)


def no_grad_names(model):
    src = torch.randint(0, 12, (2, 8))
    tgt = torch.randint(0, 12, (2, 9))
    model.zero_grad(set_to_none=True)
    model(src, tgt).backward()
    return [n for n, p in model.named_parameters() if p.grad is None]


def test_fixed_model_trains_every_parameter():
    torch.manual_seed(0)
    model = XTransformer(**CONFIG)
    assert model.encoder.to_logits is None
    assert no_grad_names(model) == []


def test_encoder_keeps_logits_leaves_exactly_that_unused():
    torch.manual_seed(0)
    model = XTransformer(**CONFIG, encoder_keeps_logits=True)
    assert no_grad_names(model) == ["encoder.to_logits.weight"]


def test_prefixed_arguments_reach_the_right_part():
    model = XTransformer(**CONFIG, dec_layer_dropout=0.2, dec_tie_embedding=True, enc_num_memory_tokens=2)
    assert model.decoder.attn_layers.layer_dropout == 0.2
    assert model.decoder.to_logits.weight is model.decoder.token_emb.weight
    assert model.encoder.memory_tokens.shape == (2, 32)
    assert model.encoder.attn_layers.rotary_pos_emb and not model.decoder.attn_layers.rotary_pos_emb


def test_generate_shape_and_mode():
    torch.manual_seed(0)
    model = XTransformer(**CONFIG)
    out = model.generate(torch.randint(0, 12, (3, 8)), torch.zeros(3, 1, dtype=torch.long), 6)
    assert out.shape == (3, 6) and model.training


def test_learns_to_copy():
    torch.manual_seed(0)
    config = {k: v for k, v in CONFIG.items() if k != "enc_rotary_pos_emb"}  # absolute positions align src/tgt
    model = XTransformer(**config)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(100):
        src = torch.randint(1, 12, (16, 8))
        tgt = torch.cat((torch.zeros(16, 1, dtype=torch.long), src), dim=1)
        loss = model(src, tgt)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.parametrize("bad, match", [({"depth": 2}, "depth"), ({"enc_tie_embedding": True}, "enc_tie_embedding"),
                                        ({"dec_cross_attend": False}, "dec_cross_attend")])
def test_bad_arguments(bad, match):
    with pytest.raises((TypeError, ValueError), match=match):
        XTransformer(**CONFIG, **bad)


def test_tgt_too_short():
    model = XTransformer(**CONFIG)
    with pytest.raises(ValueError, match=r"\(2, 1\)"):
        model(torch.randint(0, 12, (2, 8)), torch.zeros(2, 1, dtype=torch.long))


def test_tie_token_emb_shares_the_encoder_embedding():
    model = XTransformer(**CONFIG, tie_token_emb=True, dec_tie_embedding=True)
    assert model.decoder.token_emb is model.encoder.token_emb
    assert model.decoder.to_logits.weight is model.encoder.token_emb.weight  # the tied projection follows it
    assert no_grad_names(model) == []


def test_tie_token_emb_needs_one_vocabulary():
    with pytest.raises(ValueError, match="enc_num_tokens and dec_num_tokens must be equal, but got 12 and 13"):
        XTransformer(**{**CONFIG, "dec_num_tokens": 13}, tie_token_emb=True)
    with pytest.raises(TypeError, match="tie_token_emb must be True or False"):
        XTransformer(**CONFIG, tie_token_emb=1)
