"""Every claim the stored Lab 01 notebook prints, recomputed from the pure functions it calls."""

import json
from pathlib import Path

import pytest

from xtlab.labs.layer_dropout.experiments import (
    block_presence_matrix,
    check_skip_gradient_link,
    run_layer_dropout,
    skip_statistics,
)
from xtlab.labs.layer_dropout.generalization import compare_layer_dropout

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "01_layer_dropout.ipynb"


def stored_text_of(path: Path) -> str:
    cells = json.loads(path.read_text())["cells"]
    outputs = [output for cell in cells if cell["cell_type"] == "code" for output in cell["outputs"]]
    return "".join("".join(output.get("text", "")) for output in outputs)


@pytest.fixture(scope="module")
def stored_text() -> str:
    return stored_text_of(NOTEBOOK)


@pytest.fixture(scope="module")
def run():
    return run_layer_dropout(layer_dropout=0.1, depth=4, steps=60, seed=0)


def test_notebook_imports_everything_from_xtlab_and_defines_only_exercise_answers():
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    code = "\n".join("".join(cell["source"]) for cell in cells if cell["cell_type"] == "code")
    defined = [line.split("(")[0].removeprefix("def ") for line in code.splitlines() if line.startswith("def ")]
    assert defined == ["skipped_blocks_at", "expected_all_blocks_steps"]
    assert "class " not in code and "nn.Module" not in code


def test_report_is_reproduced_with_finite_loss(run, stored_text):
    stats = skip_statistics(run)
    assert stats.losses_finite and stats.skipped_block_steps > 0
    attention = {label for label, kind in zip(run.block_labels, run.block_kinds, strict=True) if kind == "attn"}
    first = next(t for t, skipped in enumerate(run.reported_skips) if attention & set(skipped))
    assert f"step {first}: the model skipped {list(run.reported_skips[first])}" in stored_text
    assert any(name.endswith("fn.to_qkv.weight") for name in run.presence.without_gradient(first))
    assert "every loss finite: True" in stored_text


def test_skip_fraction_is_inside_its_interval(run, stored_text):
    stats = skip_statistics(run)
    low, high = stats.skip_interval
    assert low <= 0.1 <= high
    assert f"skipped block-steps: {stats.skipped_block_steps} of {stats.block_steps}" in stored_text
    assert f"[{low:.3f}, {high:.3f}] contains p = 0.1: True" in stored_text
    all_low, all_high = stats.all_blocks_interval
    assert all_low <= 0.9**8 <= all_high
    assert f"(1 - p)^L = {0.9 ** 8:.3f}, inside that interval: True" in stored_text


def test_eval_and_neuron_dropout_contrasts(stored_text):
    eval_stats = skip_statistics(run_layer_dropout(layer_dropout=0.1, depth=4, steps=30, seed=0, mode="eval"))
    assert eval_stats.skipped_block_steps == 0 and eval_stats.params_without_gradient == 0
    neuron = skip_statistics(run_layer_dropout(layer_dropout=0.0, depth=4, steps=30, seed=0, neuron_dropout=0.3))
    assert neuron.params_without_gradient == 0
    assert "eval mode, p = 0.1: 0 skipped block-steps, 0 parameter-steps without a gradient" in stored_text
    assert f"0 of {neuron.param_steps} parameter-steps without a gradient" in stored_text


def test_exact_link_holds(run, stored_text):
    link = check_skip_gradient_link(run)
    assert link.holds
    assert f"checked {link.steps_checked} steps, {link.steps_with_skips} of them" in stored_text
    assert "reported skipped blocks at every step: True" in stored_text


def test_layer_dropout_narrows_the_generalization_gap(stored_text):
    comparison = compare_layer_dropout(layer_dropouts=(0.0, 0.3), steps=100, train_tokens=1000)
    without, with_dropout = comparison.curve(0.0), comparison.curve(0.3)
    assert with_dropout.final_gap < without.final_gap
    assert without.train_losses[-1] < with_dropout.train_losses[-1]
    assert f"p = 0.0: train {without.train_losses[-1]:.2f}, validation {without.val_losses[-1]:.2f}" in stored_text
    assert "smaller train/validation gap with layer dropout: True" in stored_text
    assert "lower train loss without layer dropout: True" in stored_text


def test_presence_matrix_rows_name_the_reported_skips(run):
    present, labels = block_presence_matrix(run)
    skipped = [[label for label, got in zip(labels, present[t], strict=True) if not got] for t in range(run.steps)]
    assert skipped == [list(run.reported_skips[t]) for t in range(run.steps)]
    stats = skip_statistics(run)
    assert f"the run measured {stats.all_blocks_steps} all-blocks steps out of 60" in stored_text_of(NOTEBOOK)
