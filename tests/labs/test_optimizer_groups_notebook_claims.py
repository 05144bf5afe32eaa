"""Every number and verdict the stored Lab 04 notebook prints, recomputed from the lab's pure functions."""

import json
from pathlib import Path

import pytest

from tests.labs.notebook_text import stored_text_of
from xtlab.labs.optimizer_groups.decay import STORAGES, gain_decay_adamw
from xtlab.labs.optimizer_groups.grouping_view import grouping_view
from xtlab.labs.optimizer_groups.models import MODELS, build_model, parameter_count
from xtlab.labs.optimizer_groups.recipe import run_article_recipe

ROOT = Path(__file__).resolve().parents[2]
EDITIONS = [ROOT / "notebooks" / "04_optimizer_groups.ipynb", ROOT / "solutions" / "04_optimizer_groups.ipynb"]


@pytest.fixture(scope="module", params=EDITIONS, ids=lambda p: p.parent.name)
def stored_text(request) -> str:
    return stored_text_of(request.param)


def test_parameter_counts(stored_text):
    for name in MODELS:
        tensors, elements = parameter_count(build_model(name))
        assert f"{name:24s} {tensors:3d} parameter tensors, {elements:6d} elements" in stored_text


def test_recipe_lines(stored_text):
    for name in MODELS:
        run = run_article_recipe(name, build_model(name))
        assert (f"{name}: {run.listed} listed / {run.trainable} trainable, assertion holds: {run.assertion_holds}; "
                f"wrong group: {run.count('wrong group')}, two groups: {run.count('two groups')}") in stored_text
        assert f"   createOptimizer: {run.optimizer_outcome}" in stored_text
        for p in run.problems:
            assert f"rule: {p.rule}; effect: {p.effect}" in stored_text
    assert "Answer (computed): it fires\nthe lists hold 15 entries for 14 trainable parameters" in stored_text


def test_timing_story(stored_text):
    assert "fused is the fastest at both sizes, at least 2x faster than the for-loop and foreach: True" in stored_text
    assert "Answer (computed): fused" in stored_text
    assert "[holds with a caveat] fused=True makes the optimizer markedly faster" in stored_text


def test_gain_decay_numbers(stored_text):
    decay = gain_decay_adamw(1.5, lr=1e-2, weight_decay=0.3, steps=1000)
    direct, offset = decay.final(STORAGES[0]), decay.final(STORAGES[1])
    assert f"gain stored directly: 1.5 -> {direct:.3f}" in stored_text
    assert f"gain stored as offset from 1: 1.5 -> {offset:.3f}" in stored_text
    assert "follows the closed form to 1e-4 at every step: True" in stored_text
    assert "the gain stays 1.500" in stored_text
    assert "Answer (computed): near 1" in stored_text and f"the gain ends at {offset:.3f}" in stored_text


def test_audit_verdicts(stored_text):
    assert "1. [does not hold] The recipe's module list" in stored_text
    assert "it decays 6 LayerNorm gains" in stored_text
    assert "2. [holds] The name keywords" in stored_text
    assert "3. [holds with a caveat] Embedding tables" in stored_text
    assert "4. [holds with a caveat] The count assertion" in stored_text
    wrong = grouping_view("xtlab decoder", "by ndim").wrong
    assert f"on the xtlab decoder it decays {len(wrong)} parameters" in stored_text
    assert "7. [holds with a caveat] Decaying norm parameters" in stored_text


def test_notebook_defines_only_exercise_answers():
    cells = json.loads(EDITIONS[1].read_text())["cells"]
    code = "\n".join("".join(cell["source"]) for cell in cells if cell["cell_type"] == "code")
    defined = [line.split("(")[0].removeprefix("def ") for line in code.splitlines() if line.startswith("def ")]
    assert defined == ["group_by_module_type", "find_group_problems", "decay_decisions"]
    assert "class " not in code
