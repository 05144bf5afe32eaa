"""Every number and verdict the stored Lab 04 notebook prints, recomputed from the lab's pure functions."""

import json
import re
from pathlib import Path

import pytest

from tests.labs.notebook_text import stored_text_of
from xtlab.labs.optimizer_groups.decay import STORAGES, gain_decay_adam_l2, gain_decay_adamw
from xtlab.labs.optimizer_groups.grouping_view import grouping_view
from xtlab.labs.optimizer_groups.models import MODELS, build_model, parameter_count, xtlab_decoder
from xtlab.labs.optimizer_groups.recipe import run_article_recipe
from xtlab.labs.optimizer_groups.rule import DECAY_RULE
from xtlab.labs.optimizer_groups.timing import count_step_operations

ROOT = Path(__file__).resolve().parents[2]
EDITIONS = [ROOT / "notebooks" / "04_optimizer_groups.ipynb", ROOT / "solutions" / "04_optimizer_groups.ipynb"]
SOLUTIONS = EDITIONS[1]


@pytest.fixture(scope="module", params=EDITIONS, ids=lambda p: p.parent.name)
def stored_text(request) -> str:
    return stored_text_of(request.param)


@pytest.fixture(scope="module")
def solutions_text() -> str:
    return stored_text_of(SOLUTIONS)


@pytest.fixture(scope="module")
def runs():
    return {name: run_article_recipe(name, build_model(name)) for name in MODELS}


def test_the_rule_is_printed_once_at_the_top(stored_text):
    assert stored_text.count(DECAY_RULE) == 1


def test_first_cell_links_the_article_page():
    first = json.loads(SOLUTIONS.read_text())["cells"][0]
    assert "](../xtlab/articles/002_optimizer_groups.md)" in "".join(first["source"])


def test_parameter_counts(stored_text):
    for name in MODELS:
        tensors, elements = parameter_count(build_model(name))
        assert f"{name:30s} {tensors:3d} parameter tensors, {elements:6d} elements" in stored_text


def test_recipe_lines(solutions_text, runs):
    for name, run in runs.items():
        assert (f"{name}: {run.listed} listed / {run.trainable} trainable, assertion holds: {run.assertion_holds}; "
                f"wrong group: {run.count('wrong group')}, two groups: {run.count('two groups')}, no group: "
                f"{run.count('no group')}; norm gains decayed: {len(run.decayed_gains)}") in solutions_text
        assert f"   createOptimizer: {run.optimizer_outcome}" in solutions_text
        for p in run.problems:
            assert f"rule: {p.rule}; effect: {p.effect}" in solutions_text
    assert "Answer (computed): it fires\nthe lists hold 15 entries for 14 trainable parameters" in solutions_text
    assert runs["x-transformers, direct gains"].count("wrong group") == 3
    assert all(run.count("wrong group") == 0 for name, run in runs.items() if name != "x-transformers, direct gains")


def test_prose_on_the_recipe_matches_the_runs(runs):
    source = (ROOT / "notebooks" / "src" / "04_optimizer_groups.py").read_text()
    assert "The count assertion passes** on every untied model, including the one with gains misplaced" in source
    assert all(run.assertion_holds for name, run in runs.items() if name != "tied by assignment")
    assert runs["torch nn.Transformer"].problems == [] and runs["torch nn.Transformer"].decayed_gains == ()


def test_operation_counts_are_stored_and_device_neutral(stored_text):
    for label, model in (("lab decoder", xtlab_decoder()), ("width 256, depth 4", xtlab_decoder(dim=256, depth=4))):
        counted = count_step_operations(model)
        line = (f"{label} ({counted.tensors} parameter tensors): one step dispatches "
                + ", ".join(f"{name} {count}" for name, count in counted.counts.items()))
        assert line in stored_text
    assert counted.counts["fused"] < counted.counts["foreach"] < counted.counts["for-loop"]


def test_timing_lines_live_only_in_cells_nbval_ignores():
    for edition in EDITIONS:
        for cell in json.loads(edition.read_text())["cells"]:
            text = "".join("".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", ""))
                           for o in cell.get("outputs", []))
            if re.search(r"\d ms\b|fastest:|median step times", text):
                assert "# NBVAL_IGNORE_OUTPUT" in "".join(cell["source"]), text[:200]


def test_gain_decay_numbers(solutions_text):
    decay = gain_decay_adamw(1.5, lr=1e-2, weight_decay=0.3, steps=1000)
    direct, offset = decay.final(STORAGES[0]), decay.final(STORAGES[1])
    assert f"gain stored directly: 1.5 -> {direct:.3f}" in solutions_text
    assert f"gain stored as offset from 1: 1.5 -> {offset:.3f}" in solutions_text
    assert "follows the closed form to 1e-4 at every step: True" in solutions_text
    assert "the gain stays 1.500" in solutions_text
    assert "Answer (computed): near 1" in solutions_text and f"the gain ends at {offset:.3f}" in solutions_text
    for wd in (0.3, 0.03):
        gains = gain_decay_adam_l2(1.5, lr=1e-2, weight_decay=wd, steps=1000)
        assert (f"Adam, L2 weight decay {wd}: a gain stored directly goes 1.5 -> {gains[-1]:.3f} after 1000 steps "
                f"(after 100: {gains[100]:.3f})") in solutions_text


def test_audit_verdicts(solutions_text):
    expected = {1: "holds only under an unstated condition", 2: "holds", 3: "does not hold", 4: "holds",
                5: "holds only under an unstated condition", 6: "does not hold",
                7: "holds only under an unstated condition", 8: "does not hold", 9: "holds", 10: "holds"}
    for number, verdict in expected.items():
        assert re.search(rf"^{number}\. \[{re.escape(verdict)}\]", solutions_text, re.M), number
    assert "it decays 9 LayerNorm gains" in solutions_text
    wrong = [row for row in grouping_view("xtlab decoder", "by ndim").wrong if row.expected == "no_decay"]
    assert f"on the xtlab decoder it decays {len(wrong)} parameters the article itself exempts" in solutions_text
    assert "section 3, device-neutral" in solutions_text


def test_notebook_defines_only_exercise_answers():
    cells = json.loads(SOLUTIONS.read_text())["cells"]
    code = "\n".join("".join(cell["source"]) for cell in cells if cell["cell_type"] == "code")
    defined = [line.split("(")[0].removeprefix("def ") for line in code.splitlines() if line.startswith("def ")]
    assert defined == ["build_param_groups", "find_group_problems", "decay_decisions", "adamw_step",
                       "choose_implementation"]
    assert "class " not in code


def test_implementation_exercise_claims(stored_text):
    from xtlab.labs.optimizer_groups.implementation_exercise import REFUSALS

    late = sum(refusal.when == "first step" for refusal in REFUSALS)
    assert f"{len(REFUSALS)} refusals, {late} of them only at the first step" in stored_text
    assert (late, len(REFUSALS)) == (5, 7)  # the prose: "5 of the 7 refusals come only at the first step"
    for refusal in REFUSALS:
        assert refusal.source in stored_text


def test_implementation_applied_to_the_lab_decoder(stored_text):
    """The lab decoder's float32 parameters allow fused on every fused device (CPU and CUDA alike), so the applied
    choice is fused wherever the notebook runs, in both editions (the learner's falls back to the reference)."""
    model = xtlab_decoder()
    tensors = len(list(model.parameters()))
    assert f"flags {{'fused': True}}: torch ran fused and moved {tensors} of {tensors} tensors" in stored_text
    assert "... and raises RuntimeError at the first step: `fused=True` requires" in stored_text


def test_section_3_and_the_exercise_agree_on_fused(solutions_text):
    """Section 3 says fused does the whole update in one kernel; the exercise's fastest is fused where allowed."""
    counted = count_step_operations(xtlab_decoder())
    assert counted.counts["fused"] == min(counted.counts.values()) and counted.fused_kernels["fused"] == 1
    assert "Fused when allowed (the fewest operations)" in (ROOT / "notebooks/src/04_optimizer_groups.py").read_text()
    from xtlab.labs.optimizer_groups.implementation_exercise import IMPLEMENTATION_CASES

    assert f"PASS: your choice matches the reference on {len(IMPLEMENTATION_CASES)} hidden cases" in solutions_text
