"""Lab 05 DDP scenarios without launching: validation, scripted skips, how rank outcomes become run outcomes, and
the gradient-average comparison on hand-made gradients."""

import math

import pytest
import torch

from xtlab.labs.encoder_decoder_ddp.ddp_panel import panel_scenario
from xtlab.labs.encoder_decoder_ddp.gradient_average import compare_gradient_average
from xtlab.labs.encoder_decoder_ddp.launch import ScenarioReport, _rank_report, _stopped, run_scenarios
from xtlab.labs.encoder_decoder_ddp.notebook_runs import notebook_scenarios
from xtlab.labs.encoder_decoder_ddp.scenarios import DDPScenario, RankOutcome, ScriptedSkips, build_scenario_model

REDUCTION = ("RuntimeError: Expected to have finished reduction in the prior iteration before starting a new one. "
             "This error indicates ...\nParameters which did not receive grad for rank 0: b.weight, a.weight\n")
GLOO_TIMEOUT = "RuntimeError: [/x/gloo/unbound_buffer.cc:78] Timed out waiting 2000ms for recv operation to complete"


@pytest.mark.parametrize(("kwargs", "error", "words"), [
    ({"name": ""}, ValueError, "name"),
    ({"name": 3}, TypeError, "name"),
    ({"name": "x", "find_unused_parameters": "yes"}, TypeError, "find_unused_parameters"),
    ({"name": "x", "depth": 0}, ValueError, "depth"),
    ({"name": "x", "layer_dropout": 1.5}, ValueError, "layer_dropout"),
    ({"name": "x", "debug": "LOUD"}, ValueError, "LOUD"),
    ({"name": "x", "steps": 0}, ValueError, "steps"),
    ({"name": "x", "collective_timeout_s": 0.1}, ValueError, "collective_timeout_s"),
    ({"name": "x", "skips": ((1,),)}, TypeError, r"skips\[0\]\[0\]"),
    ({"name": "x", "skips": (((-1,),),)}, ValueError, "skips"),
    ({"name": "x", "model_bytes": "pickle"}, TypeError, "model_bytes"),
])
def test_scenario_rejects_bad_settings_by_name(kwargs, error, words):
    with pytest.raises(error, match=words):
        DDPScenario(**kwargs)


@pytest.mark.parametrize(("scenarios", "error", "words"), [
    ([], TypeError, "scenarios"),
    (["fixed"], TypeError, "DDPScenario"),
    ([DDPScenario("a"), DDPScenario("a")], ValueError, "'a'"),
    ([DDPScenario("a", skips=(((1,),),))], ValueError, "one schedule per rank"),
    ([DDPScenario("a", depth=1, skips=(((3,),), ((),)))], ValueError, r"blocks \[3\]"),
])
def test_run_scenarios_rejects_bad_scenarios_before_starting_anything(scenarios, error, words):
    with pytest.raises(error, match=words):
        run_scenarios(scenarios)


def test_run_scenarios_rejects_bad_world_size_and_timeout():
    with pytest.raises(ValueError, match="world_size"):
        run_scenarios(DDPScenario("a"), world_size=1)
    with pytest.raises(ValueError, match="timeout_s"):
        run_scenarios(DDPScenario("a"), timeout_s=0.0)


def test_scripted_skips_follow_the_script_then_skip_nothing():
    draw = ScriptedSkips(((2,), (), (0, 5)), 6)
    assert [draw() for _ in range(4)] == [
        [False, False, True, False, False, False], [False] * 6, [True, False, False, False, False, True], [False] * 6]


def test_scenario_model_skips_what_the_script_says_on_each_rank():
    scenario = DDPScenario("s", depth=2, skips=(((2,), (4,)), ((), (1,))))
    src, tgt = torch.zeros(2, 6, dtype=torch.long), torch.zeros(2, 7, dtype=torch.long)
    for rank, expected in enumerate([((2,), (4,)), ((), (1,))]):
        model = build_scenario_model(scenario, rank)
        seen = []
        for _ in expected:
            model(src, tgt)
            seen.append(model.decoder.attn_layers.last_skipped)
        assert tuple(seen) == expected


def test_same_skips_on_every_rank_draws_alike_and_per_rank_draws_differ():
    def draws(scenario, rank):
        model = build_scenario_model(scenario, rank)
        return [model.decoder.attn_layers.draw_skips() for _ in range(6)]

    alike = DDPScenario("a", depth=2, layer_dropout=0.3, same_skips_on_every_rank=True)
    own = DDPScenario("o", depth=2, layer_dropout=0.3)
    assert draws(alike, 0) == draws(alike, 1)
    assert draws(own, 0) != draws(own, 1)


def _report(*outcomes, scenario=None):
    ranks = tuple(_rank_report(o) if isinstance(o, RankOutcome) else _stopped(rank, o)
                  for rank, o in enumerate(outcomes))
    raw = tuple(o if isinstance(o, RankOutcome) else None for o in outcomes)
    return ScenarioReport(2, 5, scenario or DDPScenario("demo"), ranks, raw)


def test_rank_outcomes_become_a_run_outcome():
    trained = [RankOutcome("demo", r, True, 3, seconds=0.1, checksum="c") for r in (0, 1)]
    assert _report(*trained).outcome == "trained on every rank" and _report(*trained).ranks_agree is True
    error = RankOutcome("demo", 1, False, 1, 2, "forward", 0.01, REDUCTION)
    hung = RankOutcome("demo", 0, False, 0, 1, "backward", 2.01, GLOO_TIMEOUT)
    mixed = _report(hung, error)
    assert mixed.outcome == "hang until the timeout"
    assert mixed.ranks_with("hung") == [0] and mixed.ranks_with("error") == [1]
    assert mixed.unused == ("a.weight", "b.weight") and mixed.ranks_agree is None
    assert mixed.lines() == [
        "run 2 of 5, demo: hang until the timeout",
        "  find_unused_parameters=False, static_graph=False, TORCH_DISTRIBUTED_DEBUG=OFF",
        "  rank 0: blocked in the backward of step 1, raised after 2.01 s: RuntimeError: Timed out waiting 2000ms "
        "for recv operation to complete",
        "  rank 1: error in the forward of step 2, raised after 0.01 s: RuntimeError: Expected to have finished "
        "reduction in the prior iteration before starting a new one.",
    ]
    both_errors = _report(RankOutcome("demo", 0, False, 1, 2, "forward", 0.0, REDUCTION), error)
    assert both_errors.outcome == "error"
    died = _report(trained[0], "rank 1 died with exit code 1 without reporting a result")
    assert died.outcome == "error" and died.ranks[1].status == "died"
    stopped = _report(trained[0], "rank 1 did not finish within timeout_s=5 seconds and was stopped")
    assert stopped.outcome == "hang until the timeout" and stopped.ranks[1].status == "stopped"


def test_different_checksums_mean_ranks_disagree():
    outcomes = [RankOutcome("demo", r, True, 3, checksum=str(r), local_checksum="same") for r in (0, 1)]
    report = _report(*outcomes, scenario=DDPScenario("demo", control_without_ddp=True))
    assert report.ranks_agree is False and report.local_ranks_agree is True


def _grads(**values):
    return {name: None if value is None else torch.tensor(value) for name, value in values.items()}


def test_gradient_average_finds_the_one_rank_halving():
    scenario = DDPScenario("g", record_gradients=True)
    # "a" used on both ranks (local 2 and 4 -> mean 3), "b" on rank 1 only (local 4 -> DDP 2), "c" on none
    ddp = _grads(a=[3.0], b=[2.0], c=None)
    outcomes = [RankOutcome("g", 0, True, 3, grads=ddp, local_grads=_grads(a=[2.0], b=None, c=None)),
                RankOutcome("g", 1, True, 3, grads=dict(ddp), local_grads=_grads(a=[4.0], b=[4.0], c=None))]
    average = compare_gradient_average(_report(*outcomes, scenario=scenario))
    assert average.ranks_agree and average.one_rank_ratio == (0.5, 0.5) and average.every_rank_ratio == (1.0, 1.0)
    assert average.max_error == 0.0
    assert [row.name for row in average.used_on_one_rank()] == ["b"]
    assert [row.name for row in average.used_on_no_rank()] == ["c"]
    wrong = dict(ddp, b=torch.tensor([4.0]))  # as if DDP had not averaged in rank 0's zeros
    outcomes = [RankOutcome("g", r, True, 3, grads=wrong, local_grads=o.local_grads) for r, o in enumerate(outcomes)]
    average = compare_gradient_average(_report(*outcomes, scenario=scenario))
    assert average.one_rank_ratio == (1.0, 1.0) and average.max_error == 2.0
    missing = dict(ddp, b=None)
    outcomes = [RankOutcome("g", r, True, 3, grads=missing, local_grads=o.local_grads) for r, o in enumerate(outcomes)]
    assert math.isinf(compare_gradient_average(_report(*outcomes, scenario=scenario)).max_error)


def test_gradient_average_refuses_runs_it_cannot_use():
    with pytest.raises(TypeError, match="ScenarioReport"):
        compare_gradient_average("run")
    trained = [RankOutcome("demo", r, True, 3) for r in (0, 1)]
    with pytest.raises(ValueError, match="record_gradients"):
        compare_gradient_average(_report(*trained))
    failed = RankOutcome("demo", 0, False, 1, 2, "forward", 0.0, REDUCTION)
    with pytest.raises(ValueError, match="did not train"):
        compare_gradient_average(_report(failed, trained[1], scenario=DDPScenario("demo", record_gradients=True)))


def test_notebook_runs_have_unique_names_and_each_setting_the_issue_names():
    scenarios = notebook_scenarios()
    assert len({s.name for s in scenarios}) == len(scenarios)
    dropout = [s for s in scenarios if s.skips is not None and len({s.skips[0], s.skips[1]}) == 2]
    settings = {(s.find_unused_parameters, s.static_graph) for s in dropout}
    assert {(False, False), (True, False), (False, True)} <= settings
    assert any(s.debug == "INFO" and s.encoder_keeps_logits for s in scenarios)  # INFO already names them


def test_panel_scenario_rejects_unknown_models():
    with pytest.raises(ValueError, match="no such model"):
        panel_scenario("no such model", False, False, "OFF")
    assert panel_scenario("encoder fixed", True, False, "DETAIL").debug == "DETAIL"


def test_a_timeout_while_building_is_an_error_not_a_hang():
    # the short collective timeout covers training only; a slow start on a loaded machine is a failed start
    setup = RankOutcome("demo", 0, False, 0, None, "building the model", 60.0, GLOO_TIMEOUT)
    in_training = RankOutcome("demo", 1, False, 0, 1, "backward", 2.0, GLOO_TIMEOUT)
    report = _report(setup, in_training)
    assert report.ranks_with("error") == [0] and report.ranks_with("hung") == [1]
    assert _report(setup, setup).outcome == "error"


def test_scenarios_build_on_the_cpu_whatever_the_default_device():
    # the cause of a CUDA-only outcome: a model or batch built on the default device; meta stands in for cuda here
    from xtlab.labs.encoder_decoder_ddp.scenarios import _batches

    for scenario in (DDPScenario("bug", encoder_keeps_logits=True), DDPScenario("drop", depth=2, layer_dropout=0.3)):
        with torch.device("meta"):
            model = build_scenario_model(scenario, 0)
            batches = _batches(scenario, 0)
        assert {p.device.type for p in model.parameters()} == {"cpu"}
        assert {b.src.device.type for b in batches} == {"cpu"}
        reference = build_scenario_model(scenario, 0)
        assert all(torch.equal(a, b) for a, b in zip(model.parameters(), reference.parameters(), strict=True))


def test_the_fix_exercise_hands_over_a_cpu_model_whatever_the_default_device():
    from xtlab.labs.encoder_decoder_ddp.fix_exercise import _batches, buggy_trained_model, fixed_trained_model

    with torch.device("meta"):
        models, batches = (buggy_trained_model(), fixed_trained_model()), _batches()
    assert {p.device.type for model in models for p in model.parameters()} == {"cpu"}
    assert {t.device.type for batch in batches.values() for t in batch if t is not None} == {"cpu"}
