"""The report card (xtlab.audit): every row computed, models left as they were, bad input refused."""

import copy
import pickle
import random

import pytest
import torch
from torch import nn

from tests.diagnostics.audit_models import Head, head_adapter, head_batch, head_loss
from xtlab.diagnostics import audit
from xtlab.diagnostics.model_audit import (
    COULD_NOT_RUN,
    FAILS,
    HOLDS,
    NOT_APPLICABLE,
    Build,
    ModelAdapter,
    ModelSnapshot,
    ReportCard,
    Subject,
    adapter_for,
    audit_models,
    run_tying_paths,
)
from xtlab.model import Decoder, TransformerWrapper

KEYS = ["gradient_presence", "layer_dropout_seeding", "mems_none_vs_zero", "segmented_vs_full", "tying_paths",
        "deepcopy_independence", "optimizer_groups", "decay_placement", "unused_parameters"]


def xtlab_model(layer_dropout=0.3, max_mem_len=4, num_memory_tokens=0, attn_num_mem_kv=0):
    torch.manual_seed(0)
    return TransformerWrapper(20, 8, Decoder(16, 2, 2, attn_dim_head=8, rotary_pos_emb=True,
                                             layer_dropout=layer_dropout, attn_num_mem_kv=attn_num_mem_kv),
                              max_mem_len=max_mem_len, num_memory_tokens=num_memory_tokens, tie_embedding=True)


def x_model(tie=True):
    from x_transformers import Decoder as XDecoder
    from x_transformers import TransformerWrapper as XWrapper

    torch.manual_seed(0)
    return XWrapper(num_tokens=20, max_seq_len=8, max_mem_len=4, tie_embedding=tie,
                    attn_layers=XDecoder(dim=16, depth=2, heads=2, attn_dim_head=8, rotary_pos_emb=True,
                                         layer_dropout=0.3, verbose=False))


def test_rows_come_in_the_course_order_and_the_xtlab_model_keeps_its_invariants():
    card = audit(xtlab_model(), ddp=False)
    assert [row.key for row in card.rows] == KEYS
    assert card.status("gradient_presence") == FAILS  # layer dropout leaves blocks without a gradient
    for key in ("layer_dropout_seeding", "mems_none_vs_zero", "segmented_vs_full", "tying_paths",
                "optimizer_groups", "unused_parameters"):
        assert card.status(key) == HOLDS, card.row(key)
    assert "7 of 7" in card.row("tying_paths").evidence
    assert card.versions["torch"] == torch.__version__ and "x-transformers" in card.versions
    assert "torch" in repr(card) and "<table>" in card._repr_html_()


def test_x_transformers_fails_what_the_course_found_in_it():
    card = audit(x_model(), ddp=False)
    assert card.kind == "x-transformers TransformerWrapper"
    assert card.status("layer_dropout_seeding") == FAILS  # Python's random, not torch
    assert card.status("mems_none_vs_zero") == FAILS  # zero memories are attended
    assert card.status("segmented_vs_full") == HOLDS
    assert card.status("tying_paths") == FAILS and "copy.deepcopy: untied" in card.row("tying_paths").evidence
    assert card.status("decay_placement") == FAILS and "token_emb.emb.weight" in card.row("decay_placement").evidence


def test_memory_tokens_and_memory_key_values_break_segmented_equals_full():
    assert audit(xtlab_model(num_memory_tokens=2), ddp=False).status("segmented_vs_full") == FAILS
    assert audit(xtlab_model(attn_num_mem_kv=2), ddp=False).status("segmented_vs_full") == FAILS


def test_torch_transformer_rows_without_hooks_are_not_applicable():
    torch.manual_seed(0)
    model = nn.Transformer(d_model=8, nhead=2, num_encoder_layers=1, num_decoder_layers=1, dim_feedforward=16)
    card = audit(model, ddp=False)
    for key in ("layer_dropout_seeding", "mems_none_vs_zero", "segmented_vs_full", "tying_paths"):
        assert card.status(key) == NOT_APPLICABLE
    assert card.status("gradient_presence") == HOLDS and card.status("unused_parameters") == HOLDS


def test_a_naive_tie_breaks_on_assign_and_safetensors_and_survives_deepcopy():
    outcomes = {outcome.path: outcome for outcome in run_tying_paths(Head(tie=True), "embed", "out")}
    assert outcomes["load_state_dict(assign=True)"].tie == "half-tied"
    assert outcomes["safetensors save_file/load_file"].tie == "error"
    assert outcomes["copy.deepcopy"].holds and outcomes["torch.save/torch.load(weights_only)"].holds
    assert all(outcome.values_restored for outcome in outcomes.values() if outcome.tie != "error")


def test_an_unused_head_fails_the_unused_parameter_row_and_a_model_without_a_tie_is_not_applicable():
    card = audit(Head(unused=True), head_adapter(tie=False), ddp=False)
    assert card.status("unused_parameters") == FAILS and "unused_head.weight" in card.row("unused_parameters").evidence
    assert card.status("tying_paths") == NOT_APPLICABLE
    untied = audit(Head(tie=False), head_adapter(tie=True), ddp=False)
    assert untied.status("tying_paths") == NOT_APPLICABLE and "untied as built" in untied.row("tying_paths").evidence


def test_the_audit_leaves_model_and_random_state_as_they_were():
    model = xtlab_model()
    model.eval()
    before = {key: value.clone() for key, value in model.state_dict().items()}
    objects = [id(p) for p in model.parameters()]
    torch.manual_seed(123)
    random.seed(5)
    torch_state, python_state = torch.get_rng_state(), random.getstate()
    audit(model, ddp=False)
    assert torch.equal(torch.get_rng_state(), torch_state) and random.getstate() == python_state
    assert [id(p) for p in model.parameters()] == objects and not model.training
    assert all(torch.equal(before[key], value) for key, value in model.state_dict().items())
    assert model.to_logits.weight is model.token_emb.weight
    assert all(p.grad is None for p in model.parameters())


def test_a_snapshot_restores_ties_after_meta_and_assign():
    model = Head(tie=True)
    snapshot = ModelSnapshot(model)
    model.to("meta")
    model.to_empty(device="cpu")
    model.load_state_dict({key: torch.zeros_like(value) for key, value in model.state_dict().items()}, assign=True)
    assert model.out.weight is not model.embed.weight
    snapshot.restore()
    assert model.out.weight is model.embed.weight and snapshot.values_equal(model)


def test_extra_checks_become_rows_whatever_they_return():
    def raises(model, adapter):
        raise RuntimeError("boom")

    checks = {"true": lambda m, a: True, "with evidence": lambda m, a: (False, "3 leaks"), "raises": raises,
              "not a bool": lambda m, a: torch.tensor(True)}
    card = audit(Head(tie=True), head_adapter(), ddp=False, extra_checks=checks)
    assert [row.key for row in card.rows][-4:] == list(checks)
    assert card.status("true") == HOLDS
    assert card.row("with evidence").evidence == "3 leaks" and card.status("with evidence") == FAILS
    assert card.status("raises") == COULD_NOT_RUN and "RuntimeError: boom" in card.row("raises").evidence
    assert card.row("raises").reason == "check error"
    assert card.status("not a bool") == FAILS and "must return a bool" in card.row("not a bool").evidence


def test_a_broken_adapter_is_a_row_that_could_not_run_not_a_crash():
    def bad_loss(model, batch):
        return model(batch[0])  # not a scalar

    card = audit(Head(), ModelAdapter("bad", head_batch, bad_loss), ddp=False)
    assert card.status("gradient_presence") == COULD_NOT_RUN and "scalar" in card.row("gradient_presence").evidence
    assert all(row.reason == "adapter error" for row in card.rows)


def test_ddp_step_one_launch_holds_fails_and_needs_build_for_a_model_that_does_not_pickle():
    recipe = Build(Head, {"tie": True})
    cards = audit_models({
        "used": Subject(Head(tie=True), head_adapter()),
        "unused": Subject(Head(unused=True), head_adapter(tie=False)),
        "x without build": x_model(),
        "lambda adapter": Subject(Head(), ModelAdapter("local", lambda m, g: head_batch(m, g), head_loss)),
        "built": Subject(Head(tie=True), head_adapter(), build=recipe),
    }, steps=2)
    used = cards["used"].row("ddp_step")
    assert used.status == HOLDS and "identical across ranks: True" in used.evidence, used.evidence
    assert cards["unused"].status("ddp_step") == FAILS
    assert "Expected to have finished reduction" in cards["unused"].row("ddp_step").evidence
    assert cards["x without build"].status("ddp_step") == NOT_APPLICABLE
    assert "pass build=" in cards["x without build"].row("ddp_step").evidence
    assert cards["lambda adapter"].status("ddp_step") == NOT_APPLICABLE
    assert cards["built"].status("ddp_step") == HOLDS


def test_build_pickles_and_gives_each_call_its_own_modules():
    recipe = Build(nn.Sequential, {})
    assert isinstance(pickle.loads(pickle.dumps(recipe))(), nn.Sequential)
    shared = Build(TransformerWrapper, {"num_tokens": 5, "max_seq_len": 4, "attn_layers": Decoder(8, 1, 2,
                                                                                                    attn_dim_head=4)})
    assert shared().attn_layers is not shared().attn_layers
    with pytest.raises(TypeError, match="factory"):
        Build("not callable", {})
    with pytest.raises(TypeError, match="kwargs"):
        Build(nn.Linear, [1, 2])


def test_adapter_for_picks_the_ready_adapter_and_refuses_others():
    assert adapter_for(xtlab_model()).name == "xtlab TransformerWrapper"
    assert adapter_for(xtlab_model(max_mem_len=0)).xl_step is None
    assert adapter_for(x_model(tie=False)).embedding == "token_emb"
    with pytest.raises(TypeError, match="no ready adapter for .*Head"):
        adapter_for(Head())
    with pytest.raises(TypeError, match="torch.nn.Module"):
        adapter_for("model")
    assert pickle.loads(pickle.dumps(adapter_for(xtlab_model()))).name == "xtlab TransformerWrapper"


@pytest.mark.parametrize(("kwargs", "error", "words"), [
    ({"embedding": "embed"}, ValueError, "together"),
    ({"get_layer_dropout": lambda m: 0.0}, ValueError, "together"),
    ({"xl_step": 3}, TypeError, "xl_step"),
    ({"embedding": 1, "output": "out"}, TypeError, "embedding"),
])
def test_model_adapter_refuses_incomplete_hooks(kwargs, error, words):
    with pytest.raises(error, match=words):
        ModelAdapter("bad", head_batch, head_loss, **kwargs)


@pytest.mark.parametrize(("loss", "words"), [
    ("loss", r"loss must be callable as loss\(model, batch\) -> scalar tensor, but got str"),
    (lambda model: model.sum(), r"loss must have the signature loss\(model, batch\).*\(model\)"),
    (lambda model, x, y: model(x), r"loss must have the signature loss\(model, batch\).*\(model, x, y\)"),
])
def test_model_adapter_refuses_a_loss_without_the_loss_fn_signature(loss, words):
    with pytest.raises(TypeError, match=words):
        ModelAdapter("bad", head_batch, loss)


@pytest.mark.parametrize(("call", "error", "words"), [
    (lambda: audit("model"), TypeError, "model"),
    (lambda: audit(Head(), "adapter", ddp=False), TypeError, "ModelAdapter"),
    (lambda: audit(Head(), head_adapter(), steps=0, ddp=False), ValueError, "steps"),
    (lambda: audit(Head(), head_adapter(), seed=-1, ddp=False), ValueError, "seed"),
    (lambda: audit(Head(), head_adapter(), ddp="no"), TypeError, "ddp"),
    (lambda: audit(Head(), head_adapter(), ddp=False, extra_checks={"x": 1}), TypeError, "extra_checks"),
    (lambda: audit_models({}), ValueError, "at least one"),
    (lambda: audit_models([Head()]), TypeError, "models"),
])
def test_bad_input_is_refused_by_name(call, error, words):
    with pytest.raises(error, match=words):
        call()


def test_a_card_row_lookup_names_the_rows():
    card = ReportCard("m", "kind", 1, {}, ())
    with pytest.raises(KeyError, match="no row 'tying'"):
        card.row("tying")
    assert copy.deepcopy(card) == card
