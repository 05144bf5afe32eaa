"""The audit on models the course did not write (nanoGPT's and minGPT's designs, x-transformers' decoder with
per-layer layer dropout and its encoder-decoder, Hugging Face GPT-2 when installed): the expected outcome of every
row, and every model bitwise unchanged afterwards (tensors, requires_grad, gradients, training flags, plain
attributes)."""

import time

import pytest
import torch

from tests.diagnostics import audit_models as m
from xtlab.diagnostics.model_audit import COULD_NOT_RUN, FAILS, HOLDS, MISSING_CAPABILITY, Subject, audit_models

H, F, C = HOLDS, FAILS, COULD_NOT_RUN
ROWS = ("gradient_presence", "layer_dropout_seeding", "mems_none_vs_zero", "segmented_vs_full", "tying_paths",
        "deepcopy_independence", "optimizer_groups", "decay_placement", "unused_parameters", "ddp_step")
EXPECTED = {  # one outcome per row, in ROWS' order
    "nanoGPT-style": (H, C, C, C, F, H, H, F, H, H),
    "minGPT-style": (H, C, C, C, C, F, H, H, H, H),
    "x-transformers decoder": (F, F, F, H, F, F, H, F, H, H),
    "x-transformers encoder-decoder": (H, F, C, C, C, H, H, F, H, H),
}


def fingerprint(model: torch.nn.Module) -> dict:
    """Everything the audit may touch, compared bitwise: values, dtypes, object identities, requires_grad,
    gradients, training flags and every module's plain attributes."""
    tensors = [(name, tensor.dtype, tensor.detach().clone(), id(tensor), tensor.requires_grad, tensor.grad)
               for name, tensor in [*model.named_parameters(remove_duplicate=False),
                                    *model.named_buffers(remove_duplicate=False)]]
    attributes = {name: {key: value for key, value in vars(module).items()
                         if key not in ("_parameters", "_buffers", "_modules")}
                  for name, module in model.named_modules(remove_duplicate=False)}
    return {"tensors": tensors, "attributes": attributes, "attribute_repr": repr(attributes)}


def assert_unchanged(before: dict, model: torch.nn.Module) -> None:
    after = fingerprint(model)
    assert len(before["tensors"]) == len(after["tensors"])
    for (name, dtype, values, identity, requires_grad, grad), now in zip(before["tensors"], after["tensors"],
                                                                          strict=True):
        assert now[0] == name and now[1] == dtype and now[3] == identity and now[4] == requires_grad, name
        assert torch.equal(values, now[2]) and (values.view(-1).view(torch.uint8) == now[2].view(-1).view(
            torch.uint8)).all(), f"{name} changed"
        assert now[5] is grad, f"{name}.grad changed"
    assert before["attributes"].keys() == after["attributes"].keys()
    for name, attributes in before["attributes"].items():
        assert attributes.keys() == after["attributes"][name].keys(), name
        for key, value in attributes.items():
            assert after["attributes"][name][key] is value, f"{name}.{key} was replaced"
    assert before["attribute_repr"] == after["attribute_repr"]


@pytest.fixture(scope="module")
def audited():
    subjects = {
        "nanoGPT-style": Subject(m.build_nano_gpt(), m.nano_adapter(), m.build_nano_gpt),
        "minGPT-style": Subject(m.build_min_gpt(), m.min_adapter(), m.build_min_gpt),
        "x-transformers decoder": Subject(m.build_x_decoder(), None, m.build_x_decoder),
        "x-transformers encoder-decoder": Subject(m.build_x_encoder_decoder(), m.encoder_decoder_adapter(),
                                                  m.build_x_encoder_decoder),
    }
    subjects["minGPT-style"].model.eval()  # a model audited in eval mode must come back in eval mode
    subjects["x-transformers decoder"].model.token_emb.emb.weight.requires_grad_(True)
    before = {name: fingerprint(subject.model) for name, subject in subjects.items()}
    start = time.perf_counter()
    cards = audit_models(subjects, seed=0, steps=8)
    seconds = time.perf_counter() - start
    return subjects, before, cards, seconds


@pytest.mark.parametrize("name", list(EXPECTED))
def test_every_row_has_the_expected_outcome(audited, name):
    _, _, cards, _ = audited
    card = cards[name]
    assert tuple(row.key for row in card.rows) == ROWS
    got = tuple(row.status for row in card.rows)
    assert got == EXPECTED[name], "\n" + repr(card)
    assert all(row.reason == MISSING_CAPABILITY for row in card.rows if row.status == COULD_NOT_RUN), repr(card)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_every_model_is_left_bitwise_as_it_was(audited, name):
    subjects, before, _, _ = audited
    assert_unchanged(before[name], subjects[name].model)


def test_per_layer_layer_dropout_comes_back_per_layer(audited):
    subjects, _, cards, _ = audited
    assert subjects["x-transformers decoder"].model.attn_layers.layer_dropouts == m.PER_LAYER_DROPOUT
    assert "layer dropout p=0.4" in cards["x-transformers decoder"].row("gradient_presence").evidence


def test_optimizer_rows_say_which_recipe_they_graded(audited):
    _, _, cards, _ = audited
    for name in ("nanoGPT-style", "minGPT-style"):
        for key in ("optimizer_groups", "decay_placement"):
            assert "graded the model's own configure_optimizers" in cards[name].row(key).evidence
    assert "transformer.wte.weight (embedding)" in cards["nanoGPT-style"].row("decay_placement").evidence
    assert "graded the usual ndim >= 2 recipe" in cards["x-transformers decoder"].row("decay_placement").evidence


def test_deepcopy_independence_names_what_the_copy_still_calls(audited):
    _, _, cards, _ = audited
    assert "transformer.h.0.mlp.c_fc.weight" in cards["minGPT-style"].row("deepcopy_independence").evidence
    assert "(token_emb.emb.weight)" in cards["x-transformers decoder"].row("deepcopy_independence").evidence


def test_the_audit_takes_seconds_per_model(audited):
    _, _, _, seconds = audited
    assert seconds < 40 * len(EXPECTED)


def test_hugging_face_gpt2_from_a_tiny_config():
    transformers = pytest.importorskip(
        "transformers", reason="Hugging Face transformers is not installed (the test extra); pip install transformers "
                               "to audit its GPT-2")
    config = transformers.GPT2Config(vocab_size=24, n_positions=8, n_embd=16, n_layer=2, n_head=2)
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(config)
    before = fingerprint(model)
    from tests.diagnostics.audit_models import hf_adapter

    card = audit_models({"gpt2": Subject(model, hf_adapter())}, ddp=False)["gpt2"]
    assert card.row("tying_paths").ran and card.status("unused_parameters") == HOLDS, repr(card)
    assert_unchanged(before, model)
