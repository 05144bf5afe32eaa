import pytest
import torch
import torch.nn as nn

from tests.diagnostics.models import x_decoder, x_encoder_decoder, xtlab_decoder
from xtlab.diagnostics.ties import TieStatus, inspect_ties, tie_status


class TinyLanguageModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.token_emb = nn.Embedding(10, 4)
        self.to_logits = nn.Linear(4, 10, bias=False)


def truly_tied() -> TinyLanguageModel:
    model = TinyLanguageModel()
    model.to_logits.weight = model.token_emb.weight  # the naive tie: one Parameter under two names
    return model


def half_tied() -> TinyLanguageModel:
    # what load_state_dict(..., assign=True) does to a naive tie: two Parameter objects over one storage
    model = truly_tied()
    model.load_state_dict(model.state_dict(), assign=True)
    return model


def test_untied_model_has_no_ties():
    report = inspect_ties(TinyLanguageModel())
    assert report.tied == report.half_tied == report.state_dict_aliases == ()
    assert report.status("token_emb.weight", "to_logits.weight") == TieStatus.UNTIED


def test_truly_tied_model():
    report = inspect_ties(truly_tied())
    assert report.tied == (("token_emb.weight", "to_logits.weight"),)
    assert report.half_tied == ()
    assert report.state_dict_aliases == (("token_emb.weight", "to_logits.weight"),)
    assert tie_status(truly_tied(), "to_logits.weight", "token_emb.weight") == TieStatus.TIED


def test_half_tied_model_is_told_apart():
    model = half_tied()
    assert model.token_emb.weight is not model.to_logits.weight
    report = inspect_ties(model)
    assert report.tied == ()
    assert report.half_tied == (("token_emb.weight", "to_logits.weight"),)
    assert report.state_dict_aliases == (("token_emb.weight", "to_logits.weight"),)
    assert report.status("token_emb.weight", "to_logits.weight") == TieStatus.HALF_TIED


def test_half_tie_really_moves_the_weight_twice():
    # the danger the inspector names: AdamW updates the shared memory once per Parameter object
    steps = {}
    for label, model in (("tied", truly_tied()), ("half", half_tied())):
        before = model.token_emb.weight.detach().clone()
        optimizer = torch.optim.AdamW(model.parameters(), lr=0.1, weight_decay=0.0)
        model.to_logits(model.token_emb(torch.arange(3))).sum().backward()
        optimizer.step()
        steps[label] = (model.token_emb.weight.detach() - before).abs().max().item()
    assert steps["half"] > 1.5 * steps["tied"]


def test_meta_device_model_has_no_storage_ties():
    with torch.device("meta"):
        model = TinyLanguageModel()
    assert inspect_ties(model).half_tied == ()


def test_x_transformers_encoder_decoder_token_embeddings_are_truly_tied():
    report = inspect_ties(x_encoder_decoder(tie_token_emb=True))
    assert ("encoder.token_emb.emb.weight", "decoder.net.token_emb.emb.weight") in report.tied
    assert report.half_tied == ()
    untied = inspect_ties(x_encoder_decoder(tie_token_emb=False))
    assert untied.tied == ()


def test_x_transformers_tie_embedding_has_no_output_parameter_to_untie():
    model = x_decoder(tie_embedding=True)
    report = inspect_ties(model)
    assert report.tied == report.half_tied == ()
    assert "to_logits.weight" not in dict(model.named_parameters())


def test_xtlab_tied_linear_keeps_one_state_dict_key():
    model = xtlab_decoder(tie_embedding=True)
    report = inspect_ties(model)
    assert report.half_tied == () and report.state_dict_aliases == ()
    assert not any(key.startswith("to_logits") for key in model.state_dict())


@pytest.mark.parametrize(
    ("first", "second", "named"),
    [("token_emb.weight", "output.weight", "second='output.weight'"), ("emb", "to_logits.weight", "first='emb'")],
)
def test_bad_names_are_named(first, second, named):
    with pytest.raises(ValueError, match=named):
        tie_status(TinyLanguageModel(), first, second)


def test_not_a_module_is_named():
    with pytest.raises(TypeError, match="dict"):
        inspect_ties({"weight": torch.ones(1)})
