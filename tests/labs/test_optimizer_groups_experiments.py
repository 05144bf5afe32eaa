"""Lab 04 experiments: the groups table, disagreements, grouping mistakes, AdamW choice, and the notebook's claims."""

import pytest
import torch

from xtlab.labs.optimizer_groups.groups import (
    adamw_choice,
    disagreements,
    duplicate_tied_parameter_mistake,
    forgotten_parameter_mistake,
    group_table,
    groups_by_category,
    row_named,
    xtransformers_table,
)
from xtlab.labs.optimizer_groups.specimens import small_lm, specimen_model


def test_specimen_holds_every_kind_of_special_parameter():
    categories = {row.category for row in group_table().rows}
    assert categories == {"matrix weight", "embedding", "memory tokens", "memory key/values", "norm gain", "bias"}
    reasons = {row.reason for row in group_table().rows}
    assert {"RMSNorm gain", "ScaleNorm gain"} <= reasons
    model = specimen_model()
    assert model.rmsnorm_lm.to_logits.weight is model.rmsnorm_lm.token_emb.weight  # tied embedding
    assert model(torch.zeros(2, 5, dtype=torch.long)).shape == (2, 5, 44)


def test_specimen_is_deterministic():
    a, b = specimen_model(), specimen_model()
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


def test_small_lm_rejects_unknown_norm():
    with pytest.raises(ValueError, match="'batchnorm'"):
        small_lm("batchnorm")


def test_totals_match_the_notebook():
    by_type = group_table("by_type", weight_decay=0.1)
    by_ndim = group_table("by_ndim", weight_decay=0.1)
    assert [(t.group, t.count, t.numel) for t in by_type.totals] == [("decay", 8, 24576), ("no_decay", 20, 5667)]
    assert [(t.group, t.count, t.numel) for t in by_ndim.totals] == [("decay", 18, 29824), ("no_decay", 10, 419)]
    assert sum(t.numel for t in by_type.totals) == sum(p.numel() for p in specimen_model().parameters())
    assert by_type.decay_of("decay") == 0.1 and by_type.decay_of("no_decay") == 0.0


def test_exempt_controls_which_categories_decay():
    table = group_table("by_type", exempt=("bias",))
    assert row_named(table.rows, "rmsnorm_lm.memory_tokens").group == "decay"
    assert row_named(table.rows, "rmsnorm_lm.attn_layers.layers.1.fn.net.0.bias").group == "no_decay"


@pytest.mark.parametrize("kwargs, match", [
    ({"strategy": "by_size"}, "by_size"),
    ({"exempt": ("biases",)}, "biases"),
    ({"weight_decay": -0.1}, "-0.1"),
])
def test_group_table_rejects_bad_controls(kwargs, match):
    with pytest.raises(ValueError, match=match):
        group_table(**kwargs)


def test_disagreements_are_the_data_like_parameters():
    found = disagreements()
    assert {d.category for d in found} == {"memory tokens", "memory key/values", "embedding"}
    assert len(found) == 10
    assert all(d.by_type_group == "no_decay" and d.by_ndim_group == "decay" for d in found)
    scale_gain = "scalenorm_lm.attn_layers.final_norm.g"
    assert scale_gain not in {d.name for d in found}
    assert row_named(group_table("by_ndim").rows, scale_gain).reason == "ndim 1 <= 1"


def test_row_named_names_the_missing_parameter():
    with pytest.raises(ValueError, match="'nope'"):
        row_named(group_table().rows, "nope")


def test_forgotten_parameter_passes_torch_but_not_xtlab():
    mistake = forgotten_parameter_mistake()
    assert mistake.torch_error == ""
    assert "did not change: ['memory_tokens', 'attn_layers.layers.0.fn.mem_k', 'attn_layers.layers.0.fn.mem_v']" \
        in mistake.torch_silent_damage
    assert mistake.xtlab_error.startswith("ValueError: trainable parameters in no group")
    assert "memory_tokens" in mistake.xtlab_error


def test_duplicate_tied_parameter_shows_the_real_torch_error():
    mistake = duplicate_tied_parameter_mistake()
    assert mistake.torch_error == "ValueError: some parameters appear in more than one parameter group"
    assert "'token_emb.weight' appears twice" in mistake.xtlab_error


def test_xtransformers_model_gets_the_same_grouping():
    xt = xtransformers_table("by_type")
    assert groups_by_category(xt.rows) == groups_by_category(group_table("by_type").rows)
    assert row_named(xt.rows, "memory_tokens").group == "no_decay"
    assert row_named(xt.rows, "token_emb.emb.weight").group == "no_decay"
    assert row_named(xt.rows, "attn_layers.final_norm.g").reason == "RMSNorm gain"


def test_adamw_choice_reports_fused_on_this_torch():
    choice = adamw_choice("cpu")
    assert choice.implementation == "fused" and choice.fused_available
    assert "cpu" not in choice.reason and "cuda" not in choice.reason  # same text on every device
