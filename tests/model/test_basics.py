"""Shapes, causality and dtypes of the core model."""

import pytest
import torch

from xtlab import Decoder, Encoder, TransformerWrapper


def lm(**kw):
    layers = kw.pop("layers", {})
    torch.manual_seed(0)
    return TransformerWrapper(50, 16, Decoder(32, 2, 4, **layers), **kw)


def test_logits_shape():
    x = torch.randint(0, 50, (3, 10))
    assert lm()(x).shape == (3, 10, 50)


def test_decoder_is_causal():
    model = lm(layers={"rotary_pos_emb": True}).eval()
    x = torch.randint(0, 50, (1, 10))
    y = x.clone()
    y[0, 7] = (y[0, 7] + 1) % 50
    a, b = model(x), model(y)
    torch.testing.assert_close(a[:, :7], b[:, :7])
    assert not torch.allclose(a[:, 7:], b[:, 7:])


def test_encoder_is_bidirectional():
    torch.manual_seed(0)
    model = TransformerWrapper(50, 16, Encoder(32, 1, 4), return_only_embed=True).eval()
    x = torch.randint(0, 50, (1, 8))
    y = x.clone()
    y[0, 7] = (y[0, 7] + 1) % 50
    assert not torch.allclose(model(x)[:, 0], model(y)[:, 0])


def test_return_only_embed_has_no_logits():
    model = TransformerWrapper(50, 16, Encoder(32, 1, 4), return_only_embed=True)
    assert model.to_logits is None
    assert model(torch.randint(0, 50, (2, 5))).shape == (2, 5, 32)


def test_memory_tokens_are_stripped_and_learned():
    model = lm(num_memory_tokens=3)
    out = model(torch.randint(0, 50, (2, 5)))
    assert out.shape == (2, 5, 50)
    assert model.memory_tokens.shape == (3, 32)
    out.sum().backward()
    assert model.memory_tokens.grad is not None


def test_padding_mask_hides_padded_keys_from_encoder():
    torch.manual_seed(0)
    model = TransformerWrapper(50, 16, Encoder(32, 2, 4, rotary_pos_emb=True), return_only_embed=True).eval()
    x = torch.randint(1, 50, (1, 6))
    mask = torch.tensor([[True, True, True, True, False, False]])
    y = x.clone()
    y[0, 4:] = 0
    torch.testing.assert_close(model(x, mask=mask)[:, :4], model(y, mask=mask)[:, :4])


@pytest.mark.parametrize("norm", [{}, {"use_rmsnorm": True}, {"use_scalenorm": True}])
@pytest.mark.parametrize("offset", [False, True])
def test_norm_variants_run_and_unit_offset_starts_at_identity(norm, offset):
    model = lm(layers={**norm, "norm_unit_offset": offset})
    gains = [p for n, p in model.named_parameters() if n.endswith((".g", ".gamma"))]
    assert gains and all(torch.all(g == (0.0 if offset else 1.0)) for g in gains)
    assert torch.isfinite(model(torch.randint(0, 50, (2, 5)))).all()


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_dtypes(dtype):
    model = lm(layers={"rotary_pos_emb": True, "attn_num_mem_kv": 2}, max_mem_len=8).to(dtype)
    out, mems = model(torch.randint(0, 50, (2, 5)), return_mems=True)
    assert out.dtype == dtype and mems[0].dtype == dtype


def test_generate_greedy_is_deterministic_and_sized():
    model = lm()
    prompt = torch.randint(0, 50, (2, 3))
    a = model.generate(prompt, 20)
    assert a.shape == (2, 20)
    assert torch.equal(a, model.generate(prompt, 20))
    assert model.training  # generate restores the mode


def test_generate_with_temperature_is_seeded():
    model = lm()
    prompt = torch.randint(0, 50, (1, 3))
    a = model.generate(prompt, 5, temperature=1.0, generator=torch.Generator().manual_seed(1))
    b = model.generate(prompt, 5, temperature=1.0, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)


def test_repr_is_informative():
    text = repr(lm(layers={"layer_dropout": 0.1}))
    assert "layer_dropout=0.1" in text and "kind='attn'" in text
