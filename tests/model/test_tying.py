"""tie_embedding=True: one Parameter, one state_dict key, and the tie survives every save/load path."""

import copy

import pytest
import torch
from safetensors.torch import load_file, save_file

from xtlab import Decoder, TiedLinear, TransformerWrapper, tie_naively
from xtlab.model import RegisteredTiedLinear, tie_registered


def tied_lm(device=None):
    torch.manual_seed(0)
    return TransformerWrapper(40, 16, Decoder(32, 1, 2), tie_embedding=True)


def is_tied(model):
    return model.to_logits.weight is model.token_emb.weight


def test_one_parameter_one_key():
    model = tied_lm()
    assert is_tied(model)
    keys = list(model.state_dict())
    assert "token_emb.weight" in keys and not any(k.startswith("to_logits") for k in keys)
    assert sum(p is model.token_emb.weight for p in model.parameters()) == 1


def test_logits_use_the_embedding():
    model = tied_lm()
    h = torch.randn(2, 3, 32)
    # scaled by dim ** -0.5 as x-transformers scales tied logits
    torch.testing.assert_close(model.to_logits(h), (h @ model.token_emb.weight.T) * 32**-0.5)


def test_tie_embedding_scale_is_configurable_and_tiedlinear_defaults_to_one():
    torch.manual_seed(0)
    model = TransformerWrapper(50, 16, Decoder(32, 1, 4), tie_embedding=True, tie_embedding_scale=1.0)
    h = torch.randn(2, 3, 32)
    torch.testing.assert_close(model.to_logits(h), h @ model.token_emb.weight.T)
    plain = TiedLinear(model.token_emb)
    torch.testing.assert_close(plain(h), h @ model.token_emb.weight.T)
    with pytest.raises(ValueError, match="tie_embedding=False"):
        TransformerWrapper(50, 16, Decoder(32, 1, 4), tie_embedding_scale=0.5)


def test_survives_torch_save_load_weights_only(tmp_path):
    model, fresh = tied_lm(), tied_lm()
    with torch.no_grad():
        model.token_emb.weight.add_(1.0)
    torch.save(model.state_dict(), tmp_path / "m.pt")
    fresh.load_state_dict(torch.load(tmp_path / "m.pt", weights_only=True))
    assert is_tied(fresh) and torch.equal(fresh.to_logits.weight, model.token_emb.weight)


def test_survives_load_state_dict_assign():
    model, fresh = tied_lm(), tied_lm()
    fresh.load_state_dict(copy.deepcopy(model.state_dict()), assign=True)
    assert is_tied(fresh)


def test_survives_safetensors(tmp_path):
    model, fresh = tied_lm(), tied_lm()
    save_file(model.state_dict(), tmp_path / "m.safetensors")
    fresh.load_state_dict(load_file(tmp_path / "m.safetensors"))
    assert is_tied(fresh)


def test_survives_meta_build_and_to_empty():
    with torch.device("meta"):
        model = tied_lm()
    model = model.to_empty(device="cpu")
    assert is_tied(model)


def test_survives_deepcopy_and_dtype_casts():
    model = tied_lm()
    clone = copy.deepcopy(model)
    assert is_tied(clone) and clone.token_emb.weight is not model.token_emb.weight
    assert is_tied(model.to(torch.float64)) and is_tied(model.half())


def test_naive_tie_is_lost_by_to_empty():
    with torch.device("meta"):
        model = tie_naively(TransformerWrapper(40, 16, Decoder(32, 1, 2)))
    assert model.to_logits.weight is model.token_emb.weight
    model = model.to_empty(device="cpu")
    assert model.to_logits.weight is not model.token_emb.weight


def test_registered_variant_duplicates_the_key():
    model = tie_registered(TransformerWrapper(40, 16, Decoder(32, 1, 2)))
    assert isinstance(model.to_logits, RegisteredTiedLinear)
    assert "to_logits.tied_module.weight" in model.state_dict()


def test_tied_linear_weight_is_read_only():
    layer = TiedLinear(torch.nn.Embedding(4, 3))
    with pytest.raises(AttributeError, match="read-only"):
        layer.weight = torch.nn.Parameter(torch.zeros(4, 3))


def test_tied_linear_keeps_forward_hooks():
    layer = TiedLinear(torch.nn.Embedding(4, 3))
    calls = []
    layer.register_forward_hook(lambda *args: calls.append(1))
    layer(torch.randn(2, 3))
    assert calls == [1]
