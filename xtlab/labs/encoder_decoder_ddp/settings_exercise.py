"""Exercise 5: choose DDP's settings for an encoder–decoder with decoder layer dropout; the checker runs them on
2 real processes, with real layer-dropout draws, and the run is the justification."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from xtlab.course import Exercise, Mistake, Verdict, call
from xtlab.course.answers import mapping_problem
from xtlab.labs.encoder_decoder_ddp.launch import run_scenarios
from xtlab.labs.encoder_decoder_ddp.scenarios import DDPScenario

SETTINGS = ("find_unused_parameters", "static_graph", "same_skips_on_every_rank")
# seed 5: every rank skips some block at every one of the 4 steps (a step without unused parameters would make
# find_unused_parameters=True print a timestamped warning from each rank into the notebook)
_LAYER_DROPOUT, _DEPTH, _STEPS, _SEED = 0.3, 2, 4, 5


def settings_scenario(settings: Mapping[str, bool], name: str = "your_settings") -> DDPScenario:
    """The run that judges ``settings``: decoder layer dropout 0.3 at depth 2, 4 steps, real draws."""
    return DDPScenario(name, depth=_DEPTH, layer_dropout=_LAYER_DROPOUT, steps=_STEPS, seed=_SEED,
                       **{key: settings[key] for key in SETTINGS})


def _differing_steps(skipped) -> int:
    return sum(len(set(per_rank)) > 1 for per_rank in zip(*skipped, strict=False))


def _hint(settings: Mapping[str, bool]) -> str:
    """Why these settings fail, in terms of the setting the learner chose (the run above is the evidence)."""
    if settings["static_graph"] and settings["find_unused_parameters"]:
        return ("static_graph=True with find_unused_parameters=True: DDP records the unused parameters of the first "
                "iteration and assumes the same ones stay unused, but layer dropout draws other blocks next step")
    if settings["static_graph"]:
        return ("static_graph=True promises that the same parameters are used at every step; layer dropout "
                "breaks that promise at the first step that skips other blocks")
    if settings["same_skips_on_every_rank"]:
        return ("the same skips on every rank still leave the skipped blocks without a gradient on every rank, and "
                "DDP at find_unused_parameters=False waits for every parameter: no bucket holding them is reduced")
    return ("these are DDP's defaults: find_unused_parameters=False waits for a gradient of every parameter, and a "
            "skipped block never gives one")


def check_ddp_settings_for_layer_dropout(ddp_settings_for_layer_dropout: Callable[[], Mapping[str, bool]]) -> Verdict:
    """``ddp_settings_for_layer_dropout()`` returns ``{setting: True/False}`` for each of ``SETTINGS``; the checker
    trains the model with them on 2 real processes."""
    settings = call(ddp_settings_for_layer_dropout)
    problem = mapping_problem(settings, SETTINGS, (True, False), "ddp_settings_for_layer_dropout()")
    if problem is not None:
        return problem
    report = run_scenarios(settings_scenario(settings))["your_settings"]
    skips = "; ".join(f"rank {rank} skipped {list(per_rank)}" for rank, per_rank in enumerate(report.skipped))
    if not report.ok:
        return Verdict.make_try_again(f"real DDP on 2 processes with {report.scenario.settings}: {report.outcome}: "
                                      + " | ".join(rank.line() for rank in report.ranks)
                                      + f" (blocks per step: {skips})", _hint(settings))
    differing = _differing_steps(report.skipped)
    return Verdict.make_pass(
        f"trained {_STEPS} steps on 2 real processes with layer dropout {_LAYER_DROPOUT}; the ranks "
                          f"skipped different blocks at {differing} of {_STEPS} steps ({skips}); "
                          f"ranks agree on parameters: {report.ranks_agree}")


_RIGHT = {"find_unused_parameters": True, "static_graph": False, "same_skips_on_every_rank": False}

SETTINGS_EXERCISE = Exercise(
    name="ddp_settings_for_layer_dropout",
    prompt="ddp_settings_for_layer_dropout(): a dict {'find_unused_parameters': ..., 'static_graph': ..., "
           "'same_skips_on_every_rank': ...} of True/False that lets DDP train a decoder with layer dropout 0.3",
    checker=check_ddp_settings_for_layer_dropout,
    reference=lambda: dict(_RIGHT),
    mistakes=(
        Mistake("draws the same skips on every rank instead",
                lambda: {**_RIGHT, "find_unused_parameters": False, "same_skips_on_every_rank": True},
                "same skips on every rank still leave"),
        Mistake("declares the graph static", lambda: {**_RIGHT, "find_unused_parameters": False, "static_graph": True},
                "promises that the same parameters are used"),
        Mistake("keeps DDP's defaults", lambda: {**_RIGHT, "find_unused_parameters": False}, "DDP's defaults"),
        Mistake("turns on both find_unused_parameters and static_graph", lambda: {**_RIGHT, "static_graph": True},
                "records the unused parameters of the first iteration"),
    ),
)
