"""Lab 02 real FSDP runs (``fully_shard``, 2 processes, gloo): one launch for every scenario and the Lingua replay.

The launch is the notebook's own call (cached in-process), so the claims tested here are the ones it prints.
"""

import numpy as np
import pytest
import torch

from xtlab.labs.weight_tying.fsdp_ranks import Scenario, TrainConfig, initial_state, materialised
from xtlab.labs.weight_tying.fsdp_runs import SCENARIOS, run_fsdp, scenario_lines
from xtlab.labs.weight_tying.models import ModelSize, build_model

pytestmark = pytest.mark.slow  # starts 2 processes that import torch: seconds on a 2-core machine


@pytest.fixture(scope="module")
def report():
    result = run_fsdp()
    assert result.ok, result.errors
    return result


def test_one_launch_ran_every_scenario_on_two_gloo_ranks(report):
    assert report.backend == "gloo" and report.world_size == 2
    assert [row.scenario for row in report.scenarios] == list(SCENARIOS)
    assert all(len(row.ranks) == 2 for row in report.scenarios)


@pytest.mark.parametrize("name", ["naive, root group", "naive, fully_shard([emb, out])", "TiedLinear, root group",
                                  "registered TiedLinear, root group", "naive, fully_shard then to_empty",
                                  "TiedLinear, to_empty then fully_shard"])
def test_one_group_keeps_the_tie_and_each_rank_stores_half_of_it(report, name):
    row = report.scenario(name)
    full = ModelSize().num_tokens * ModelSize().dim
    assert row.outcome == "tied" and row.tie_parameters == 1
    assert row.elements_per_rank == (full // 2, full // 2)
    assert row.grads_meet and row.tie_holds_after_step
    assert all(outcome.grad_gap < 1e-5 for outcome in row.ranks)


def test_naive_tie_in_separate_groups_is_refused_by_fsdp_with_its_own_advice(report):
    row = report.scenario("naive, a group each")
    assert row.outcome == "error" and row.error.startswith("ValueError: Parameter 'to_logits.weight' is shared")
    assert "fully_shard([module_a, module_b])" in row.error
    assert all(outcome.error == row.error for outcome in row.ranks)


@pytest.mark.parametrize("name", ["TiedLinear, embedding in own group", "registered, embedding in own group"])
def test_tied_linear_with_the_embedding_in_its_own_group_crashes_on_a_dtensor(report, name):
    row = report.scenario(name)
    assert row.outcome == "error" and row.stage == "step"
    assert row.error.startswith("RuntimeError: aten.mm.default got mixed torch.Tensor and DTensor")


def test_to_empty_before_fully_shard_trains_two_weights_without_an_error(report):
    row = report.scenario("naive, to_empty then fully_shard")
    full = ModelSize().num_tokens * ModelSize().dim
    assert row.outcome == "untied" and row.error is None and row.tie_parameters == 2
    assert row.elements_per_rank == (full, full)  # two weights, half of each on each rank
    assert not row.grads_meet and all(outcome.grad_gap > 0.1 for outcome in row.ranks)
    assert not row.tie_holds_after_step


def test_lingua_replay_naive_reload_changes_the_model_tied_linear_does_not(report):
    assert len(report.reloads) == 2 * len(report.config.seeds) >= 4
    for row in report.rows_of("naive"):
        assert row.tie_parameters == 2 and row.checkpoint_differs and row.verdict_reloaded == "tied"
        assert row.last_loss < row.first_loss - 0.5  # the training loss fell
        assert row.reload_gap > 0.1
    for row in report.rows_of("tied_linear"):
        assert row.tie_parameters == 1 and not row.checkpoint_differs and row.verdict_reloaded == "tied"
        assert row.last_loss < row.first_loss - 0.5
        assert row.reload_gap == pytest.approx(0.0, abs=1e-6)
    assert np.all(report.reload_gaps("naive") > 0.1) and report.reload_gaps("tied_linear").shape == (2,)


def test_scenario_lines_show_every_scenario(report):
    lines = scenario_lines(report)
    assert len(lines) == len(SCENARIOS) + 1
    assert lines[1].startswith("naive, root group") and "512 / 512" in lines[1] and "True" in lines[1]


def test_report_lookup_names_the_scenarios(report):
    with pytest.raises(KeyError, match="'flat'"):
        report.scenario("flat")


def test_reference_gradient_matches_a_single_process_model():
    # the comparison FSDP is judged by: a materialised model without FSDP holds build_model's values
    size = ModelSize()
    model = build_model("naive", seed=3, size=size)
    model.load_state_dict(initial_state("naive", 3, size))
    assert torch.equal(model.token_emb.weight, build_model("naive", seed=3, size=size).token_emb.weight)


def test_initial_state_redraws_a_small_embedding():
    state = initial_state("tied_linear", 0, ModelSize(), embedding_std=0.02)
    assert float(state["token_emb.weight"].std()) == pytest.approx(0.02, rel=0.2)


def test_materialised_outside_a_process_group_reports_fsdp_needs_one():
    with pytest.raises((RuntimeError, ValueError)):
        materialised(Scenario("x", "naive"), initial_state("naive", 0, ModelSize()), 0, ModelSize())


@pytest.mark.parametrize(("kwargs", "error", "words"), [
    ({"styles": ("none",)}, ValueError, "'none'"), ({"seeds": ()}, ValueError, "seeds"),
    ({"steps": 0}, ValueError, "steps"), ({"lr": "fast"}, TypeError, "'fast'"),
    ({"seq_len": 64}, ValueError, "64"),
])
def test_train_config_rejects_bad_settings(kwargs, error, words):
    with pytest.raises(error, match=words):
        TrainConfig(**kwargs)


@pytest.mark.parametrize(("kwargs", "error", "words"), [
    ({"world_size": 1}, ValueError, "world_size"), ({"config": "fast"}, TypeError, "TrainConfig"),
    ({"timeout_s": 0}, ValueError, "timeout_s"),
])
def test_run_fsdp_rejects_bad_arguments_before_starting_processes(kwargs, error, words):
    with pytest.raises(error, match=words):
        run_fsdp(**kwargs)


def test_a_failed_launch_reports_the_last_error_line_and_is_not_kept(monkeypatch):
    from xtlab.diagnostics import ddp_runner
    from xtlab.labs.weight_tying import fsdp_runs

    calls = []

    def failing(train_fn, world_size, **kwargs):
        calls.append(world_size)
        ranks = tuple(ddp_runner.RankResult(rank, False, None, "Traceback ...\nRuntimeError: no gloo here\n")
                      for rank in range(world_size))
        return ddp_runner.DistributedRun("gloo", ranks, 0.1)

    monkeypatch.setattr(fsdp_runs.ddp_runner, "run_distributed", failing)
    config = TrainConfig(seeds=(7,))
    for _ in range(2):
        report = run_fsdp(config=config)
        assert not report.ok and report.errors == {0: "RuntimeError: no gloo here", 1: "RuntimeError: no gloo here"}
        assert scenario_lines(report) == ["rank 0: RuntimeError: no gloo here", "rank 1: RuntimeError: no gloo here"]
    assert calls == [2, 2]
