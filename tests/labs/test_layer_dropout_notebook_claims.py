"""Every claim the stored Lab 01 notebook prints or its prose makes, recomputed from the pure functions it calls."""

import json
import re
from pathlib import Path

import pytest

from tests.labs.notebook_text import prose_of, stored_text_of
from xtlab.course import HOLDS, UNSTATED
from xtlab.labs.layer_dropout.exercises import EXERCISES
from xtlab.labs.layer_dropout.experiments import (
    block_presence_matrix,
    check_skip_gradient_link,
    run_layer_dropout,
    skip_statistics,
    steps_without_gradient,
)
from xtlab.labs.layer_dropout.generalization import compare_over_seeds, describe_step
from xtlab.labs.layer_dropout.skip_plan_exercise import plan_across_ranks
from xtlab.labs.layer_dropout.skip_units import skipped_block_calls, whole_layer_skips
from xtlab.labs.layer_dropout.skipped_updates import skipped_block_updates
from xtlab.labs.layer_dropout.xtransformers_twin import (
    run_xtransformers_layer_dropout,
    seeding_outcomes,
    twin_sizes,
    xtransformers_skip_line,
)

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "01_layer_dropout.ipynb"
SOLUTIONS = ROOT / "solutions" / "01_layer_dropout.ipynb"
SOURCE = ROOT / "notebooks" / "src" / "01_layer_dropout.py"


@pytest.fixture(scope="module")
def stored_text() -> str:
    """The solutions edition: it shows every reveal and gated output, which the learner edition holds back."""
    return stored_text_of(SOLUTIONS, "\n")


def test_learner_edition_holds_back_every_gated_output_and_reveal():
    learner = stored_text_of(NOTEBOOK, "\n")
    assert learner.count("Hidden until you commit") == 3
    assert "Answer (computed)" not in learner and "95% Wilson interval [" not in learner
    assert "The computed verdicts are hidden until you commit yours" in learner


@pytest.fixture(scope="module")
def run():
    return run_layer_dropout(layer_dropout=0.1, depth=4, steps=60, seed=0)


@pytest.fixture(scope="module")
def seeds():
    return compare_over_seeds(layer_dropouts=(0.0, 0.1), seeds=(0, 1, 2), steps=400, eval_every=50,
                              train_tokens=1000)


@pytest.fixture(scope="module")
def xt_run():
    return run_xtransformers_layer_dropout(layer_dropout=0.1, depth=4, steps=60, seed=0)


@pytest.fixture(scope="module")
def updates():
    return {(to_none, decay): skipped_block_updates(set_to_none=to_none, weight_decay=decay)
            for to_none in (True, False) for decay in (0.01, 0.0)}


def test_notebook_defines_only_exercise_answers_and_states_objectives_and_time():
    code = SOURCE.read_text()
    defined = [name for name in re.findall(r"^def (\w+)", code, re.M) if not name.startswith("print_")]
    assert defined == list(EXERCISES)
    assert "nn.Module" not in code
    prose = prose_of(NOTEBOOK)
    objectives = prose.split("**After this lab you will be able to**")[1].split("**Estimated time:**")[0]
    assert 3 <= objectives.count("\n- ") <= 5
    assert re.search(r"\*\*Estimated time:\*\* \d+ minutes", prose)


def test_learner_edition_leaves_every_exercise_unsolved():
    learner = json.loads(NOTEBOOK.read_text())["cells"]
    code = "\n".join("".join(cell["source"]) for cell in learner if cell["cell_type"] == "code")
    assert code.count("raise NotImplementedError()") == len(EXERCISES)
    assert "x = x + block.fn(block.norm(x))" not in code
    verdicts = [line for line in stored_text_of(NOTEBOOK, "\n").splitlines() if line.startswith(("PASS", "NOT YET"))]
    assert len(verdicts) == len(EXERCISES) and all(line.startswith("NOT YET") for line in verdicts)
    assert stored_text_of(SOLUTIONS).count("PASS: ") == len(EXERCISES)
    assert "the reference: the same skipped blocks as the library in 10 of 10 seeded passes" in \
        stored_text_of(NOTEBOOK)
    assert "heatmap from the library's recorder, the same states as the library's recorder at every step: True" \
        in stored_text_of(NOTEBOOK)
    assert "heatmap from your recorder, the same states as the library's recorder at every step: True" \
        in stored_text_of(SOLUTIONS)
    assert "yours: the same skipped blocks as the library in 10 of 10 seeded passes, outputs apart by at most " \
        "0.0e+00" in stored_text_of(SOLUTIONS)


def test_mechanism_is_shown_from_the_library(stored_text):
    assert "# AttentionLayers.draw_skips — xtlab/model/attention_layers.py" in stored_text
    assert re.search(r"^>\s*\d+\s+.*skip", stored_text, re.M), "the skip lines are emphasized"
    assert "# Block — xtlab/model/block.py" in stored_text


def test_report_is_reproduced_with_finite_loss(run, stored_text):
    stats = skip_statistics(run)
    assert stats.losses_finite and stats.skipped_block_steps > 0
    attention = {label for label, kind in zip(run.block_labels, run.block_kinds, strict=True) if kind == "attn"}
    first = next(t for t, skipped in enumerate(run.reported_skips) if attention & set(skipped))
    assert f"step {first}: the model skipped {list(run.reported_skips[first])}" in stored_text
    assert any(name.endswith("fn.to_qkv.weight") for name in run.presence.without_gradient(first))
    assert f"every loss finite: True; loss at the first step {run.losses[0]:.2f}, at the last {run.losses[-1]:.2f}" \
        in stored_text
    assert run.losses[-1] < run.losses[0]


def test_skip_fraction_and_all_blocks_share_are_inside_their_intervals(run, stored_text):
    stats = skip_statistics(run)
    low, high = stats.skip_interval
    assert low <= 0.1 <= high
    assert f"skipped block-steps: {stats.skipped_block_steps} of {stats.block_steps}" in stored_text
    assert f"[{low:.3f}, {high:.3f}] contains p = 0.1: True" in stored_text
    all_low, all_high = stats.all_blocks_interval
    assert all_low <= 0.9**8 <= all_high
    assert f"(1 - p)^L = {0.9 ** 8:.3f}, inside that interval: True" in stored_text


def test_share_question_reveals_the_measured_bucket(run, stored_text):
    share = skip_statistics(run).all_blocks_fraction
    label = ("more than 3 in 4" if share > 0.75 else "between 1 in 4 and 3 in 4" if share >= 0.25
             else "fewer than 1 in 4")
    assert f"ran every block?\nAnswer (computed): {label}\nmeasured {share:.2f}" in stored_text


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
    present, labels = block_presence_matrix(run)
    skipped = [[label for label, got in zip(labels, present[t], strict=True) if not got] for t in range(run.steps)]
    assert skipped == [list(run.reported_skips[t]) for t in range(run.steps)]


def test_skipped_block_is_left_alone_only_with_none_grads(updates, stored_text):
    for (to_none, decay), result in updates.items():
        line = (f"zero_grad(set_to_none={to_none}), weight_decay={decay}: {len(result.skipped)} skipped block-steps; "
                f"grad None: {result.count('none')} ({result.moved('none')} moved), grad zeros: "
                f"{result.count('zeros')} ({result.moved('zeros')} moved, up to {result.max_change('zeros'):.2e})")
        assert line in stored_text
        assert result.moved("none") == 0  # the optimizer skips a None grad: exactly no change
        if not to_none:
            assert result.count("zeros") > 0 and result.moved("zeros") == result.count("zeros")
            # prose: a zero-grad skip moves a block "about as much as a running block moves"
            assert result.max_change("zeros") > 0.25 * result.max_change_running
    assert "Answer (computed): no: it stays exactly the same" in stored_text


def test_short_training_story(seeds, stored_text):
    short = seeds.eval_steps[1]
    assert describe_step(seeds, short, 0.1) in stored_text
    n = len(seeds.seeds)
    # prose: "does not lower the validation loss: not all below zero, and their mean is above zero"
    assert seeds.seeds_helped(0.1, short) < n and seeds.val_differences(0.1, short).mean > 0
    # prose: the mean gap is smaller, because the train loss is worse
    assert seeds.gaps(0.1, short).mean < seeds.gaps(0.0, short).mean
    assert seeds.seeds_train_higher(0.1, short) == n
    assert f"and the higher train loss in {n}." in stored_text


def test_long_training_story(seeds, stored_text):
    short, long = seeds.eval_steps[1], seeds.eval_steps[-1]
    assert describe_step(seeds, long, 0.1) in stored_text
    n = len(seeds.seeds)
    assert seeds.seeds_helped(0.1, long) == n  # "ends with the lower validation loss in every seed"
    # "the model without layer dropout overfits: its train loss falls much faster than its validation loss"
    train_drop = seeds.train_losses(0.0, short).mean - seeds.train_losses(0.0, long).mean
    val_drop = seeds.val_losses(0.0, short).mean - seeds.val_losses(0.0, long).mean
    assert train_drop > 2 * val_drop and seeds.gaps(0.0, long).mean > seeds.gaps(0.0, short).mean
    # "early stopping shrinks that advantage but does not remove it"
    final_advantage = seeds.val_losses(0.0, long).mean - seeds.val_losses(0.1, long).mean
    best_advantage = seeds.best_val_losses(0.0).mean - seeds.best_val_losses(0.1).mean
    assert 0 < best_advantage < final_advantage
    assert f"p = 0: {seeds.best_val_losses(0.0)}; p = 0.1: {seeds.best_val_losses(0.1)}" in stored_text
    assert seeds.seeds_train_higher(0.1, long) == n  # "it costs fitting speed"


def test_xtransformers_twin_claims(xt_run, stored_text):
    sizes = twin_sizes(4)
    assert f"xtlab {sizes.xtlab:,}, x-transformers {sizes.x_transformers:,}" in stored_text
    for suffix in ("to_q.weight", "to_k.weight", "to_v.weight"):
        count = steps_without_gradient(xt_run, suffix)
        assert 0 < count < xt_run.steps
        assert f"steps at which some {suffix} had no gradient: {count} of 60" in stored_text
    link = check_skip_gradient_link(xt_run)
    assert link.holds
    assert "replaying Python's random() says were skipped, at every step: True (60 steps)" in stored_text
    assert str(xtransformers_skip_line()) in stored_text
    assert "that random() is Python's random.random: True" in stored_text


def test_seeding_outcomes_claims(stored_text):
    outcomes = {(o.library, o.seeding.split("(")[0]): o for o in seeding_outcomes(0.3, 4, 20, 0)}
    assert outcomes[("xtlab", "torch.manual_seed")].reproduced
    assert outcomes[("x-transformers", "random.seed")].reproduced
    assert not outcomes[("x-transformers", "torch.manual_seed")].reproduced
    assert not outcomes[("xtlab", "random.seed")].reproduced  # prose: "the mirror image"
    for outcome in outcomes.values():
        assert f"{outcome.seeding} before each run: {outcome.same_passes} of 20" in stored_text
    assert "Are the same blocks skipped?\nAnswer (computed): no, different skips" in stored_text


def test_audit_verdicts_are_the_computed_ones(run, xt_run, seeds, updates, stored_text):
    stats, link = skip_statistics(run), check_skip_gradient_link(run)
    short, long = seeds.eval_steps[1], seeds.eval_steps[-1]
    n = len(seeds.seeds)
    layers = whole_layer_skips(run)
    assert skipped_block_calls(0.1, 4, 50, 0).bypassed
    assert not layers.interval[0] <= 0.1 <= layers.interval[1] and stats.p_in_interval
    assert updates[(True, 0.01)].moved("none") == 0 and updates[(False, 0.01)].moved("zeros") > 0
    assert seeds.seeds_helped(0.1, long) == n and seeds.seeds_helped(0.1, short) < n
    assert link.holds and stats.params_without_gradient > 0
    assert seeds.seeds_train_higher(0.1, short) == n
    expected = [HOLDS] * 5 + [UNSTATED] * 4 + [HOLDS] * 3
    audit = stored_text.split("Audit of article 001")[1]
    verdicts = re.findall(r"^(\d+)\. \[([^\]]+)\]", audit, re.M)
    assert verdicts == [(str(number), verdict) for number, verdict in enumerate(expected, start=1)]
    assert "whole layers skipped (attention and feed-forward at the same step): " \
        f"{layers.skipped} of {layers.layer_steps}" in stored_text


def test_skip_plan_agrees_on_two_gloo_ranks_as_printed(stored_text):
    across = plan_across_ranks(None, seed=0, steps=8, num_blocks=8, p=0.3)
    for step in range(3):
        assert (f"step {step}: rank 0 skips blocks {across.skipped(0, step)}, rank 1 skips blocks "
                f"{across.skipped(1, step)}") in stored_text
    # prose: the plan agrees at every step; the global-generator skips part
    assert across.agreed_steps == across.steps and across.global_agreed_steps < across.steps / 2
    tail = (f"the two ranks' plans were the same at {across.agreed_steps} of {across.steps} steps; torch.rand after "
            f"torch.manual_seed(rank): the same at {across.global_agreed_steps} of {across.steps}")
    assert f"yours: {tail}" in stored_text
    assert f"the reference: {tail}" in stored_text_of(NOTEBOOK)
    assert "plan agrees at every step without a single message" in prose_of(NOTEBOOK)
