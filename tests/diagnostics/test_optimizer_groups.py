import pytest
import torch
import torch.nn as nn

from tests.diagnostics.models import x_decoder, x_encoder_decoder, xtlab_decoder
from xtlab.diagnostics.optimizer_groups import (
    EXEMPT_CATEGORIES,
    build_adamw,
    check_param_groups,
    describe_parameters,
    param_groups,
    strategy_disagreements,
)

SPECIAL_CATEGORIES = {"memory tokens", "memory key/values", "norm gain", "embedding"}


def no_decay_names(model: nn.Module, strategy: str = "by_type") -> set[str]:
    groups = {group["group_name"]: group for group in param_groups(model, 0.1, strategy)}
    return set(groups["no_decay"]["param_names"])


@pytest.mark.parametrize(
    "build",
    [
        lambda: x_decoder(),
        lambda: x_decoder(use_scalenorm=True, tie_embedding=True),
        lambda: x_encoder_decoder(),
        lambda: xtlab_decoder(tie_embedding=True),
    ],
    ids=["x-rmsnorm", "x-scalenorm-tied", "x-encoder-decoder", "xtlab-tied"],
)
def test_by_type_exempts_every_special_parameter_and_groups_are_complete(build):
    model = build()
    rows = describe_parameters(model)
    exempt = no_decay_names(model)
    leaves = {row.name.rsplit(".", 1)[-1] for row in rows}
    assert {"mem_k", "mem_v"} <= leaves
    for row in rows:
        if row.category in SPECIAL_CATEGORIES | {"bias"}:
            assert row.name in exempt, row
        if row.category == "matrix weight":
            assert row.name not in exempt, row
    assert {row.category for row in rows} >= {"memory key/values", "norm gain", "embedding", "matrix weight"}
    check = check_param_groups(model, param_groups(model, 0.1))
    assert sum(check.counts) == len(list(model.parameters())) and check.frozen == ()


def test_reasons_name_the_norm_class():
    reasons = {row.name: row.reason for row in describe_parameters(x_decoder(use_scalenorm=True))}
    assert reasons["attn_layers.final_norm.g"] == "ScaleNorm gain"
    assert reasons["memory_tokens"] == "memory tokens"
    assert reasons["attn_layers.layers.0.1.mem_k"] == "attention memory keys (mem_k)"


class RMSNormLookalike(nn.Module):
    """A norm class torch does not know (a custom RMSNorm, as many codebases define their own)."""

    def __init__(self, dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))


def test_torch_norms_custom_norms_and_gain_names_are_matched():
    rms = nn.RMSNorm(4) if hasattr(nn, "RMSNorm") else RMSNormLookalike(4)
    norms = {"ln": nn.LayerNorm(4), "bn": nn.BatchNorm1d(4), "rms": rms, "custom": RMSNormLookalike(4)}
    model = nn.ModuleDict(norms | {"lin": nn.Linear(4, 4)})
    model.lin.gamma = nn.Parameter(torch.ones(4))  # a gain by its conventional name, outside any norm class
    rows = {row.name: row for row in describe_parameters(model)}
    assert rows["ln.weight"].category == rows["bn.weight"].category == rows["rms.weight"].category == "norm gain"
    assert rows["custom.weight"].category == "norm gain"
    assert rows["lin.gamma"].category == "norm gain"
    assert rows["ln.bias"].category == "bias" and rows["lin.weight"].group == "decay"


def test_strategies_disagree_on_memory_and_embeddings_only():
    disagreements = strategy_disagreements(x_decoder())
    categories = {by_type.category for by_type, _ in disagreements}
    assert categories == {"memory tokens", "memory key/values", "embedding"}
    assert all(by_type.group == "no_decay" and by_ndim.group == "decay" for by_type, by_ndim in disagreements)


def test_by_ndim_puts_every_vector_in_no_decay():
    model = x_decoder()
    assert no_decay_names(model, "by_ndim") == {name for name, p in model.named_parameters() if p.ndim <= 1}


def test_exempt_categories_can_be_switched_off():
    model = x_decoder()
    groups = param_groups(model, 0.1, exempt=set(EXEMPT_CATEGORIES) - {"memory tokens"})
    assert "memory_tokens" in groups[0]["param_names"] and groups[0]["weight_decay"] == 0.1


def test_tied_parameter_is_listed_once_and_frozen_are_reported():
    model = x_encoder_decoder(tie_token_emb=True)
    model.encoder.pos_emb.requires_grad_(False)
    groups = param_groups(model, 0.1)
    names = [name for group in groups for name in group["param_names"]]
    assert names.count("encoder.token_emb.emb.weight") == 1 and "decoder.net.token_emb.emb.weight" not in names
    assert check_param_groups(model, groups).frozen == ("encoder.pos_emb.emb.weight",)
    frozen_rows = [row for row in describe_parameters(model) if row.group == "frozen"]
    assert [row.name for row in frozen_rows] == ["encoder.pos_emb.emb.weight"]


def test_check_catches_a_tied_parameter_listed_twice_where_torch_is_vaguer():
    model = x_encoder_decoder(tie_token_emb=True)
    every_name = dict(model.named_parameters(remove_duplicate=False))
    groups = [{"params": list(model.parameters())}, {"params": [every_name["decoder.net.token_emb.emb.weight"]]}]
    with pytest.raises(ValueError, match="more than one parameter group"):
        torch.optim.AdamW(groups)
    with pytest.raises(ValueError, match="'encoder.token_emb.emb.weight' appears twice: in group 0 and in group 1"):
        check_param_groups(model, groups)


def test_check_catches_a_forgotten_parameter_and_a_foreign_tensor():
    model = nn.Linear(2, 2)
    with pytest.raises(ValueError, match=r"no group .*\['bias'\]"):
        check_param_groups(model, [{"params": [model.weight]}])
    with pytest.raises(ValueError, match=r"group 0 holds a tensor of shape \(3,\)"):
        check_param_groups(model, [{"params": [model.weight, model.bias, torch.zeros(3)]}])


def test_build_adamw_reports_its_implementation_and_trains():
    model = x_decoder()
    built = build_adamw(model, lr=1e-3, weight_decay=0.1)
    assert built.implementation in ("fused", "default")
    assert built.note.startswith("this torch has a fused" if built.implementation == "fused" else "fused unavailable")
    assert [group["weight_decay"] for group in built.optimizer.param_groups] == [0.1, 0.0]
    model(torch.zeros(1, 4).long()).sum().backward()
    built.optimizer.step()


def test_build_adamw_falls_back_for_parameters_fused_cannot_take():
    model = nn.Linear(2, 2)
    model.extra = nn.Parameter(torch.zeros(2, dtype=torch.complex64))
    built = build_adamw(model, lr=1e-3, weight_decay=0.0)
    assert built.implementation == "default" and "complex64" in built.note


@pytest.mark.parametrize(
    ("call", "error", "named"),
    [
        (lambda m: param_groups(m, -0.1), ValueError, "weight_decay must be >= 0.0, but got -0.1"),
        (lambda m: param_groups(m, "0.1"), TypeError, "weight_decay must be a number, but got str"),
        (lambda m: param_groups(m, 0.1, strategy="by_size"), ValueError, "'by_size'"),
        (lambda m: param_groups(m, 0.1, exempt=["biases"]), ValueError, r"\['biases'\]"),
        (lambda m: param_groups(m, 0.1, exempt="bias"), TypeError, "but got 'bias'"),
        (lambda m: describe_parameters([m]), TypeError, "model must be a torch.nn.Module, but got list"),
        (lambda m: check_param_groups(m, [[m.weight]]), TypeError, "group 0 must be a dict"),
        (lambda m: build_adamw(m, lr=float("nan"), weight_decay=0.1), ValueError,
         "lr must be a finite number, but got nan"),
    ],
)
def test_bad_input_is_named(call, error, named):
    with pytest.raises(error, match=named):
        call(nn.Linear(2, 2))


def test_a_bias_named_its_own_way_is_a_bias():
    rows = {row.name: row for row in describe_parameters(nn.MultiheadAttention(8, 2))}
    assert rows["in_proj_bias"].category == "bias" and rows["in_proj_bias"].group == "no_decay"
    assert rows["in_proj_weight"].group == "decay"
