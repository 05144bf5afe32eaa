"""Lab 01 — layer dropout: skipped blocks get no gradient, step by step.

The notebook imports this package as ``lab``; every name it uses is listed here. Each name is imported from its
module on first use, so a process that needs one module (a DDP rank running the skip plan) does not pay for
x-transformers and matplotlib."""

from __future__ import annotations

import importlib
from typing import Any

_MODULE_OF = {
    "RecordedRun": "arrivals_exercise",
    "check_gradient_arrivals": "arrivals_exercise",
    "recorded_run": "arrivals_exercise",
    "EXERCISES": "exercises",
    "BLOCK_DEPTH": "experiments",
    "BLOCK_PREFIX": "experiments",
    "MODES": "experiments",
    "LayerDropoutRun": "experiments",
    "SkipGradientLink": "experiments",
    "SkipStatistics": "experiments",
    "StepMismatch": "experiments",
    "block_presence_matrix": "experiments",
    "build_model": "experiments",
    "check_skip_gradient_link": "experiments",
    "make_optimizer": "experiments",
    "parameters_of_blocks": "experiments",
    "run_layer_dropout": "experiments",
    "size_kwargs": "experiments",
    "skip_statistics": "experiments",
    "steps_without_gradient": "experiments",
    "wilson_interval": "experiments",
    "DropoutComparison": "generalization",
    "LossCurve": "generalization",
    "SeedComparison": "generalization",
    "Spread": "generalization",
    "compare_layer_dropout": "generalization",
    "compare_over_seeds": "generalization",
    "describe_step": "generalization",
    "layer_dropout_panel": "panels",
    "plot_dropout_comparison": "panels",
    "plot_layer_dropout_run": "panels",
    "plot_seed_comparison": "panels",
    "short_row_names": "panels",
    "summarize_skip_statistics": "panels",
    "STATE_COLOURS": "presence_plot",
    "STATE_NAMES": "presence_plot",
    "draw_gradient_presence": "presence_plot",
    "plot_gradient_presence": "presence_plot",
    "PlanAcrossRanks": "skip_plan_exercise",
    "check_skip_plan": "skip_plan_exercise",
    "plan_across_ranks": "skip_plan_exercise",
    "SkippedBlockCalls": "skip_units",
    "WholeLayerSkips": "skip_units",
    "skipped_block_calls": "skip_units",
    "whole_layer_skips": "skip_units",
    "SkippedBlockStep": "skipped_updates",
    "SkippedUpdates": "skipped_updates",
    "skipped_block_updates": "skipped_updates",
    "StackAgainstLibrary": "stack_exercise",
    "check_layer_dropout_stack": "stack_exercise",
    "stack_against_library": "stack_exercise",
    "XT_DEFAULT_DIM_HEAD": "xtransformers_twin",
    "XT_KINDS": "xtransformers_twin",
    "SeedingOutcome": "xtransformers_twin",
    "SourceLine": "xtransformers_twin",
    "TwinSizes": "xtransformers_twin",
    "build_xtransformers_model": "xtransformers_twin",
    "parameter_count": "xtransformers_twin",
    "run_xtransformers_layer_dropout": "xtransformers_twin",
    "seeding_outcomes": "xtransformers_twin",
    "twin_sizes": "xtransformers_twin",
    "xtransformers_draws_with_python_random": "xtransformers_twin",
    "xtransformers_skip_line": "xtransformers_twin",
}
__all__ = [*_MODULE_OF, "check"]


def __getattr__(name: str) -> Any:
    if name == "check":
        value = __getattr__("EXERCISES").check  # lab.check(name, answer) -> PASS / NOT YET / TRY AGAIN
    elif name in _MODULE_OF:
        value = getattr(importlib.import_module(f"{__name__}.{_MODULE_OF[name]}"), name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # found once; later lookups do not come here
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
