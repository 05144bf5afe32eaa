"""Lab 04's decay rule is stated once (rule.py) and every exercise, checker, panel and reference agrees with it."""

import pytest
import torch
from torch import nn

from xtlab.diagnostics.optimizer_groups import DECAY, NO_DECAY
from xtlab.labs import optimizer_groups as lab
from xtlab.labs.optimizer_groups import exercises
from xtlab.labs.optimizer_groups.grouping_view import grouping_view
from xtlab.labs.optimizer_groups.recipe import reference_rows
from xtlab.labs.optimizer_groups.rule import KINDS, REASONS, decays, parameter_kind, rule_rows


def every_model():
    models = {name: lab.build_model(name) for name in lab.MODELS}
    models.update(exercises.hidden_models())
    return models


MODELS = every_model()


def rule_groups(model):
    return {row.name: row.group for row in rule_rows(model)}


def groups_by_name(model, groups):
    name_of = {id(p): n for n, p in model.named_parameters()}
    return {name_of[id(p)]: (DECAY if group["weight_decay"] > 0 else NO_DECAY) for group in groups
            for p in group["params"]}


def test_the_rule_table_is_whole():
    assert {reason for _, reason in KINDS.values()} == set(REASONS)
    assert all(kind in lab.DECAY_RULE for kind in KINDS)


@pytest.mark.parametrize("name", list(MODELS))
def test_exercise_reference_and_panel_reference_follow_the_rule(name):
    model = MODELS[name]
    expected = rule_groups(model)
    assert groups_by_name(model, exercises._reference_groups(model, 0.05)) == expected
    assert {row.name: row.group for row in reference_rows(model)} == expected


@pytest.mark.parametrize("name", list(lab.MODELS))
def test_the_panel_s_lab_rule_grouping_misplaces_nothing(name):
    assert grouping_view(name, "lab rule").wrong == []


def test_offset_gains_decay_and_direct_gains_do_not():
    offset = rule_groups(lab.build_model("x-transformers decoder"))
    direct = rule_groups(lab.build_model("x-transformers, direct gains"))
    assert offset["attn_layers.final_norm.gamma"] == DECAY and direct["attn_layers.final_norm.gamma"] == NO_DECAY
    torch_rows = rule_groups(lab.build_model("torch nn.Transformer"))
    assert torch_rows["encoder.norm.weight"] == NO_DECAY  # nn.LayerNorm stores its gain directly


class Temperature(nn.Module):
    def __init__(self):
        super().__init__()
        self.temperature = nn.Parameter(torch.ones(4))


class OutputGain(nn.Module):
    def __init__(self):
        super().__init__()
        self.unit_offset = True
        self.gain = nn.Parameter(torch.zeros(8))


class Registers(nn.Module):
    def __init__(self):
        super().__init__()
        self.memory_tokens = nn.Parameter(torch.randn(4, 8))


class LoRA(nn.Module):
    def __init__(self):
        super().__init__()
        self.lora_a = nn.Parameter(torch.randn(2, 8))


CONCRETE = {"register tokens": (Registers, "memory_tokens"), "LoRA matrices": (LoRA, "lora_a"),
            "attention temperature": (Temperature, "temperature"), "output gain offset": (OutputGain, "gain")}


@pytest.mark.parametrize("kind", list(exercises.NEW_KINDS))
def test_decay_decisions_answers_are_the_rule_s(kind):
    group, reason = exercises._RIGHT_DECISIONS[kind]
    assert (group, reason) == KINDS[exercises.NEW_KIND_AS_RULE_KIND[kind]] and reason in exercises.DECISION_REASONS
    build, leaf = CONCRETE[kind]
    module = build()
    assert (DECAY if decays(leaf, getattr(module, leaf), module) else NO_DECAY) == group
    assert parameter_kind("gain", torch.zeros(8), OutputGain()) == "gain stored as offset from 1"


def test_every_catalogued_grouping_disagrees_with_the_rule_somewhere():
    for mistake in lab.EXERCISES["build_param_groups"].mistakes[:5]:
        assert any(groups_by_name(model, mistake.answer(model, 0.05)) != rule_groups(model)
                   or sum(len(g["params"]) for g in mistake.answer(model, 0.05)) != len(rule_groups(model))
                   for model in exercises.hidden_models().values()), mistake.description
