"""Lab 04: the article's recipe on the four models, the reference it is judged against, and bad input."""

import pytest
import torch
from torch import nn

from xtlab.labs.optimizer_groups.models import MODELS, build_model, parameter_count, tied_by_assignment
from xtlab.labs.optimizer_groups.recipe import (
    article_create_optimizer,
    placements,
    recipe_decisions,
    reference_rows,
    run_article_recipe,
)


@pytest.fixture(scope="module")
def runs():
    return {name: run_article_recipe(name, build_model(name)) for name in MODELS}


def test_xtlab_and_xtransformers_decoders_have_equal_size():
    assert parameter_count(build_model("xtlab decoder"))[1] == parameter_count(build_model("x-transformers decoder"))[1]
    tied = tied_by_assignment()
    assert tied.to_logits.weight is tied.token_emb.weight


def test_recipe_decays_the_layernorm_gains_of_both_libraries(runs):
    for name in ("xtlab decoder", "x-transformers decoder", "x-transformers, direct gains"):
        run = runs[name]
        assert run.assertion_holds and len(run.decayed_gains) == 3
        assert all(gain.endswith("gamma") for gain in run.decayed_gains)
        assert run.optimizer_outcome == "built with fused=True, stepped"
    # stored as offsets (the default) the rule decays them too; stored directly, the rule calls them misplaced
    assert runs["xtlab decoder"].problems == [] and runs["x-transformers decoder"].problems == []
    direct = runs["x-transformers, direct gains"].problems
    assert len(direct) == 3 and all(p.placed == ("decay",) and "no rule matched (LayerNorm)" in p.rule
                                    and "towards 0" in p.effect for p in direct)


def test_the_bias_keyword_catches_every_bias(runs):
    assert all(run.groups_by_kind.get("bias", ("no_decay",)) == ("no_decay",) for run in runs.values())


def test_recipe_is_right_on_torch_transformer(runs):
    run = runs["torch nn.Transformer"]
    assert run.problems == [] and run.assertion_holds and run.fused_outcome.startswith("built")


def test_tie_by_assignment_lands_in_two_groups_and_fires_the_assertion(runs):
    run = runs["tied by assignment"]
    assert (run.listed, run.trainable, run.assertion_holds) == (15, 14, False)
    two = [p for p in run.problems if p.problem == "two groups"]
    assert [p.name for p in two] == ["token_emb.weight"] and two[0].placed == ("decay", "no_decay")
    assert run.optimizer_outcome.startswith("AssertionError")
    assert run.fused_outcome == "ValueError: some parameters appear in more than one parameter group"
    with pytest.raises(AssertionError, match="15|8 decay"):
        article_create_optimizer(tied_by_assignment())


def test_run_leaves_the_model_untouched():
    model = build_model("xtlab decoder")
    before = [p.detach().clone() for p in model.parameters()]
    run_article_recipe("xtlab decoder", model)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_keywords_win_over_module_types_and_a_name_with_bias_is_exempt():
    model = nn.Module()
    model.pos_bias_mlp = nn.Linear(3, 4)
    decisions = {d.name: (d.group, d.rule) for d in recipe_decisions(model)}
    assert decisions["pos_bias_mlp.weight"] == ("no_decay", "keyword 'bias' in its name")


def test_reference_treats_in_proj_bias_as_a_bias_and_nn_layernorm_gains_as_direct():
    rows = {row.name: row for row in reference_rows(build_model("torch nn.Transformer"))}
    assert rows["encoder.layers.0.self_attn.in_proj_bias"].group == "no_decay"
    assert rows["encoder.layers.0.self_attn.in_proj_weight"].group == "decay"
    assert rows["encoder.norm.weight"].group == "no_decay" and not rows["encoder.norm.weight"].stored_as_offset


def test_placements_finds_a_forgotten_parameter():
    model = build_model("xtlab decoder")
    groups = [{"params": [p for n, p in model.named_parameters() if n != "memory_tokens"], "weight_decay": 0.0}]
    found = {p.name: p.problem for p in placements(model, groups)}
    assert found["memory_tokens"] == "no group"


@pytest.mark.parametrize("call, error, match", [
    (lambda: run_article_recipe("x", "not a model"), TypeError, "not a model"),
    (lambda: run_article_recipe("x", nn.Linear(2, 2), weight_decay=0), ValueError, "got 0"),
    (lambda: build_model("gpt"), ValueError, "'gpt'"),
    (lambda: recipe_decisions(3), TypeError, "int"),
])
def test_bad_input_is_named(call, error, match):
    with pytest.raises(error, match=match):
        call()
