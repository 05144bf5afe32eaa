import pytest
import torch
import torch.nn as nn

from tests.diagnostics.models import (
    WithUnusedHead,
    encoder_decoder_batch,
    encoder_decoder_loss,
    language_model_loss,
    tokens,
    x_decoder,
    x_encoder_decoder,
    xtlab_decoder,
)
from xtlab.diagnostics.unused_parameters import UnusedParameter, find_unused_parameters


def summed_output(model, batch):
    return model(batch).sum()


def test_names_shapes_and_numel_of_the_unused_head():
    unused = find_unused_parameters(WithUnusedHead(), summed_output, torch.ones(2, 4))
    assert unused == [UnusedParameter("unused_head.weight", (3, 4), 12), UnusedParameter("unused_head.bias", (3,), 3)]


def test_the_batch_reaches_the_loss_function_as_given():
    seen = []

    def loss_fn(model, batch):
        seen.append(batch)
        return model(batch["x"]).sum()

    batch = {"x": torch.ones(2, 4)}
    find_unused_parameters(WithUnusedHead(), loss_fn, batch)
    assert seen == [batch] and seen[0] is batch


def test_existing_gradients_are_put_back():
    model = WithUnusedHead()
    model.used.weight.grad = torch.full((4, 4), 7.0)
    find_unused_parameters(model, summed_output, torch.ones(1, 4))
    assert torch.equal(model.used.weight.grad, torch.full((4, 4), 7.0))
    assert model.unused_head.weight.grad is None


def test_frozen_parameters_are_not_listed():
    model = WithUnusedHead()
    model.unused_head.requires_grad_(False)
    assert find_unused_parameters(model, summed_output, torch.ones(1, 4)) == []


def test_x_transformers_decoder_uses_everything():
    assert find_unused_parameters(x_decoder(), language_model_loss, tokens()) == []


def test_x_transformers_encoder_decoder_uses_everything():
    assert find_unused_parameters(x_encoder_decoder(), encoder_decoder_loss, encoder_decoder_batch()) == []


def test_x_transformers_untied_output_is_unused_when_only_embeddings_are_read():
    embeddings_only = lambda model, batch: model(batch, return_embeddings=True).sum()  # noqa: E731
    unused = find_unused_parameters(x_decoder(), embeddings_only, torch.zeros(1, 4).long())
    assert [item.name for item in unused] == ["to_logits.weight"]


def test_xtlab_encoder_keeping_its_logits_is_named():
    model_api = pytest.importorskip("xtlab.model")
    if not hasattr(model_api, "XTransformer"):
        pytest.skip("xtlab.model has not landed yet")
    model = model_api.XTransformer(
        dim=32, enc_num_tokens=20, enc_depth=1, enc_heads=2, enc_max_seq_len=8, dec_num_tokens=20, dec_depth=1,
        dec_heads=2, dec_max_seq_len=8, encoder_keeps_logits=True,
    )
    batch = torch.randint(0, 20, (2, 8)), torch.randint(0, 20, (2, 8))
    unused = find_unused_parameters(model, encoder_decoder_loss, batch)
    assert {item.name for item in unused} == {"encoder.to_logits.weight"}


def test_xtlab_decoder_uses_everything():
    assert find_unused_parameters(xtlab_decoder(), language_model_loss, tokens()) == []


@pytest.mark.parametrize(
    ("model", "loss_fn", "error", "named"),
    [
        ("not a model", lambda m, b: None, TypeError, "not a model"),
        (nn.Linear(2, 1), "loss", TypeError, "loss_fn must be callable as loss_fn(model, batch) -> scalar tensor, "
                                             "but got str"),
        (nn.Linear(2, 1), lambda m: m(torch.ones(2)).sum(), TypeError,
         "loss_fn must have the signature loss_fn(model, batch) -> scalar tensor"),
        (nn.Linear(2, 1), lambda m, x, y: m(x).sum(), TypeError, "has the signature (m, x, y)"),
        (nn.Linear(2, 1), lambda m, b: 3.0, TypeError, "returned float: 3.0"),
        (nn.Linear(2, 1), lambda m, b: m(torch.ones(3, 2)), ValueError, "shape (3, 1)"),
        (nn.Linear(2, 1), lambda m, b: m(torch.ones(2)).detach().sum(), ValueError, "does not require grad"),
    ],
)
def test_bad_input_is_named(model, loss_fn, error, named):
    with pytest.raises(error) as caught:
        find_unused_parameters(model, loss_fn, torch.ones(2))
    assert named in str(caught.value)


def test_an_old_arity_loss_fn_is_refused_before_the_model_runs():
    model = WithUnusedHead()
    calls = []
    with pytest.raises(TypeError, match=r"loss_fn\(model, batch\)"):
        find_unused_parameters(model, lambda m: calls.append(m), torch.ones(1, 4))
    assert calls == [] and all(p.grad is None for p in model.parameters())
