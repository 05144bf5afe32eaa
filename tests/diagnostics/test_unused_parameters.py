import pytest
import torch
import torch.nn as nn

from tests.diagnostics.models import (
    WithUnusedHead,
    encoder_decoder_loss,
    language_model_loss,
    x_decoder,
    x_encoder_decoder,
    xtlab_decoder,
)
from xtlab.diagnostics.unused_parameters import UnusedParameter, find_unused_parameters


def test_names_shapes_and_numel_of_the_unused_head():
    unused = find_unused_parameters(WithUnusedHead(), lambda model: model(torch.ones(2, 4)).sum())
    assert unused == [UnusedParameter("unused_head.weight", (3, 4), 12), UnusedParameter("unused_head.bias", (3,), 3)]


def test_existing_gradients_are_put_back():
    model = WithUnusedHead()
    model.used.weight.grad = torch.full((4, 4), 7.0)
    find_unused_parameters(model, lambda m: m(torch.ones(1, 4)).sum())
    assert torch.equal(model.used.weight.grad, torch.full((4, 4), 7.0))
    assert model.unused_head.weight.grad is None


def test_frozen_parameters_are_not_listed():
    model = WithUnusedHead()
    model.unused_head.requires_grad_(False)
    assert find_unused_parameters(model, lambda m: m(torch.ones(1, 4)).sum()) == []


def test_x_transformers_decoder_uses_everything():
    assert find_unused_parameters(x_decoder(), language_model_loss) == []


def test_x_transformers_encoder_decoder_uses_everything():
    assert find_unused_parameters(x_encoder_decoder(), encoder_decoder_loss) == []


def test_x_transformers_untied_output_is_unused_when_only_embeddings_are_read():
    embeddings_only = lambda model: model(torch.zeros(1, 4).long(), return_embeddings=True).sum()
    unused = find_unused_parameters(x_decoder(), embeddings_only)
    assert [item.name for item in unused] == ["to_logits.weight"]


def test_xtlab_encoder_keeping_its_logits_is_named():
    model_api = pytest.importorskip("xtlab.model")
    if not hasattr(model_api, "XTransformer"):
        pytest.skip("xtlab.model has not landed yet")
    model = model_api.XTransformer(
        dim=32, enc_num_tokens=20, enc_depth=1, enc_heads=2, enc_max_seq_len=8, dec_num_tokens=20, dec_depth=1,
        dec_heads=2, dec_max_seq_len=8, encoder_keeps_logits=True,
    )
    src, tgt = torch.randint(0, 20, (2, 8)), torch.randint(0, 20, (2, 8))
    unused = find_unused_parameters(model, lambda m: m(src, tgt))
    assert {item.name for item in unused} == {"encoder.to_logits.weight"}


def test_xtlab_decoder_uses_everything():
    assert find_unused_parameters(xtlab_decoder(), language_model_loss) == []


@pytest.mark.parametrize(
    ("model", "loss_fn", "error", "named"),
    [
        ("not a model", lambda m: None, TypeError, "not a model"),
        (nn.Linear(2, 1), "loss", TypeError, "loss_fn must be callable, but got str"),
        (nn.Linear(2, 1), lambda m: 3.0, TypeError, "returned float: 3.0"),
        (nn.Linear(2, 1), lambda m: m(torch.ones(3, 2)), ValueError, r"shape \(3, 1\)"),
        (nn.Linear(2, 1), lambda m: m(torch.ones(2)).detach().sum(), ValueError, "does not require grad"),
    ],
)
def test_bad_input_is_named(model, loss_fn, error, named):
    with pytest.raises(error, match=named):
        find_unused_parameters(model, loss_fn)
