"""Lab 02 — weight tying: where a naive tie silently comes apart (save, load, initialisation, FSDP), and the
`TiedLinear` that keeps it.

The notebook imports this package as ``lab``; every name it uses is listed here. Each name is imported from its
module on first use, so an FSDP rank that unpickles a function of one module does not pay for x-transformers and
matplotlib."""

from __future__ import annotations

import importlib
from typing import Any

_MODULE_OF = {
    "SafeRoundTrip": "checkpoints",
    "broken_save_and_load": "checkpoints",
    "safe_round_trip": "checkpoints",
    "CHECKPOINT_KINDS": "exercises",
    "EXERCISES": "exercises",
    "check_load_naive_checkpoint": "exercises",
    "check_tie_state": "exercises",
    "check_tied_linear": "exercises",
    "naive_checkpoint": "exercises",
    "GroupingOutcome": "fsdp_exercise",
    "check_shard_tied_model": "fsdp_exercise",
    "grouping_outcomes": "fsdp_exercise",
    "shard_separately": "fsdp_exercise",
    "BACKEND": "fsdp_ranks",
    "DEVICE": "fsdp_ranks",
    "GROUPINGS": "fsdp_ranks",
    "MATERIALISE": "fsdp_ranks",
    "SCENARIO_SIZE": "fsdp_ranks",
    "TRAINED_STYLES": "fsdp_ranks",
    "Scenario": "fsdp_ranks",
    "ScenarioOutcome": "fsdp_ranks",
    "TrainConfig": "fsdp_ranks",
    "TrainOutcome": "fsdp_ranks",
    "corpus_batches": "fsdp_ranks",
    "fsdp_rank": "fsdp_ranks",
    "initial_state": "fsdp_ranks",
    "materialised": "fsdp_ranks",
    "run_scenario": "fsdp_ranks",
    "shard": "fsdp_ranks",
    "train_sharded": "fsdp_ranks",
    "GRADIENT_GAP_TOLERANCE": "fsdp_runs",
    "REPLAY": "fsdp_runs",
    "SCENARIOS": "fsdp_runs",
    "FSDPReport": "fsdp_runs",
    "ReloadRow": "fsdp_runs",
    "ScenarioRow": "fsdp_runs",
    "reload_without_fsdp": "fsdp_runs",
    "run_fsdp": "fsdp_runs",
    "scenario_lines": "fsdp_runs",
    "HALF_TIED": "models",
    "STYLES": "models",
    "TIED": "models",
    "UNTIED": "models",
    "ModelSize": "models",
    "build_model": "models",
    "check_style": "models",
    "decoder": "models",
    "embedding_weight": "models",
    "output_weight": "models",
    "pair_verdict": "models",
    "shares_storage": "models",
    "storage_pointer": "models",
    "tie_keys": "models",
    "tie_verdict": "models",
    "BLUE": "panels",
    "GREEN": "panels",
    "ORANGE": "panels",
    "VERMILLION": "panels",
    "paths_panel": "panels",
    "plot_drift": "panels",
    "plot_reload_gap": "panels",
    "plot_update_comparison": "panels",
    "summarize_comparison": "panels",
    "summarize_outcome": "panels",
    "updates_panel": "panels",
    "EMBEDDING_KEY": "paths",
    "PATHS": "paths",
    "PathOutcome": "paths",
    "path_apply_new_parameters": "paths",
    "path_as_built": "paths",
    "path_assign": "paths",
    "path_conflicting_keys": "paths",
    "path_deepcopy": "paths",
    "path_half": "paths",
    "path_init_order": "paths",
    "path_meta_to_empty": "paths",
    "path_safetensors": "paths",
    "path_to_float64": "paths",
    "path_torch_save_load": "paths",
    "run_path": "paths",
    "ArticleTiedLinear": "sharing",
    "FeedForwardSharing": "sharing",
    "article_tied_linear_follows": "sharing",
    "error_without_weight": "sharing",
    "share_feed_forward": "sharing",
    "xtlab_error_without_weight": "sharing",
    "DriftResult": "training",
    "UpdateComparison": "training",
    "compare_half_tied_updates": "training",
    "drift_after_path": "training",
    "LIBRARIES": "xtransformers",
    "CopyAndPickle": "xtransformers",
    "build_tied": "xtransformers",
    "copy_and_pickle": "xtransformers",
    "xtransformers_default_head_size": "xtransformers",
    "xtransformers_default_tie_scale": "xtransformers",
    "xtransformers_tie_source": "xtransformers",
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
