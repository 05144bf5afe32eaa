"""Lab 04 exercises: write your own ``param_groups``, and predict the group of three named parameters."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from xtlab.diagnostics.optimizer_groups import DECAY, NO_DECAY, check_param_groups, describe_parameters
from xtlab.exercises.verdict import Verdict, report
from xtlab.experiments.optimizer_groups import row_named
from xtlab.experiments.optimizer_groups_model import specimen_model, xtransformers_specimen
from xtlab.model import XTransformer
from xtlab.seeding import seed_everything

EXERCISE_WEIGHT_DECAY = 0.05


def unseen_models() -> dict[str, nn.Module]:
    """Models the checker tries a learner's ``param_groups`` on (not shown in the notebook)."""
    seed_everything(1)
    with torch.device("cpu"):
        encoder_decoder = XTransformer(dim=32, enc_num_tokens=20, enc_depth=1, enc_heads=2, enc_max_seq_len=16,
                                       dec_num_tokens=20, dec_depth=1, dec_heads=2, dec_max_seq_len=16,
                                       enc_attn_num_mem_kv=2, dec_num_memory_tokens=2, dec_tie_embedding=True)
    return {"x_transformers ScaleNorm LM": xtransformers_specimen(seed=1, use_scalenorm=True),
            "xtlab LayerNorm encoder-decoder (XTransformer)": encoder_decoder}


def _grade_on(model_name: str, model: nn.Module, param_groups_fn: Callable[..., Any]) -> str:
    """Empty when ``param_groups_fn`` groups ``model`` like the reference ``by_type``; else what is wrong."""
    try:
        groups = list(param_groups_fn(model, EXERCISE_WEIGHT_DECAY))
    except Exception as err:  # a learner's function may fail in any way: report it instead of crashing
        return f"on the {model_name}, your function raised {type(err).__name__}: {err}"
    try:
        check_param_groups(model, groups)
    except (TypeError, ValueError) as err:
        return f"on the {model_name}, the groups are not a valid partition: {err}"
    name_of = {id(p): name for name, p in model.named_parameters()}
    yours: dict[str, float] = {}
    for group in groups:
        decay = group.get("weight_decay")
        if decay is None:
            return f"on the {model_name}, a group has no 'weight_decay' (set it: the default would apply silently)"
        for parameter in group["params"]:
            yours[name_of[id(parameter)]] = decay
    wrong = []
    for row in describe_parameters(model, "by_type"):
        expected = EXERCISE_WEIGHT_DECAY if row.group == DECAY else 0.0
        if yours[row.name] != expected:
            wrong.append(f"{row.name} ({row.reason}) should get weight decay {expected:g}, yours gives "
                         f"{yours[row.name]:g}")
    if wrong:
        return f"on the {model_name}, {len(wrong)} parameter(s) are misplaced: " + "; ".join(wrong[:4])
    return ""


def check_param_groups_function(param_groups_fn: Callable[..., Any]) -> Verdict:
    """Exercise 1: ``param_groups_fn(model, weight_decay) -> groups`` must match the reference ``by_type`` grouping
    (weight decay for matrix weights; none for biases, norm gains, embeddings, memory tokens, mem_k/mem_v) on
    models you have not seen."""
    if not callable(param_groups_fn):
        return report(Verdict(False, f"pass your function itself, e.g. check(my_param_groups), not "
                                     f"{type(param_groups_fn).__name__}"))
    models = unseen_models()
    for model_name, model in models.items():
        problem = _grade_on(model_name, model, param_groups_fn)
        if problem:
            return report(Verdict(False, problem))
    return report(Verdict(True, f"your grouping matches the reference on {len(models)} unseen models "
                                f"({', '.join(models)})"))


PREDICTION_STRATEGY = "by_ndim"
PREDICTION_NAMES = ("rmsnorm_lm.memory_tokens", "scalenorm_lm.attn_layers.final_norm.g",
                    "rmsnorm_lm.attn_layers.layers.0.fn.mem_k")


def check_group_predictions(predictions: Mapping[str, str]) -> Verdict:
    """Exercise 2: under ``by_ndim``, predict ``"decay"`` or ``"no_decay"`` for each name in ``PREDICTION_NAMES``
    (parameters of the lab's specimen)."""
    if not isinstance(predictions, Mapping):
        return report(Verdict(False, f"answer with a dict name -> 'decay' or 'no_decay', not "
                                     f"{type(predictions).__name__}"))
    missing = [name for name in PREDICTION_NAMES if name not in predictions]
    if missing:
        return report(Verdict(False, f"predict a group for every name; missing: {missing}"))
    bad = {name: value for name, value in predictions.items() if value not in (DECAY, NO_DECAY)}
    if bad:
        return report(Verdict(False, f"each prediction must be 'decay' or 'no_decay', but got {bad}"))
    rows = describe_parameters(specimen_model(), PREDICTION_STRATEGY)
    wrong = []
    for name in PREDICTION_NAMES:
        row = row_named(rows, name)
        if predictions[name] != row.group:
            wrong.append(f"{name} has shape {row.shape}: look at its ndim, not at what it is for")
    if wrong:
        return report(Verdict(False, f"{len(wrong)} of {len(PREDICTION_NAMES)} wrong under {PREDICTION_STRATEGY}: "
                                     + "; ".join(wrong)))
    return report(Verdict(True, f"all {len(PREDICTION_NAMES)} right: {PREDICTION_STRATEGY} looks only at ndim, so "
                                "2-D memory tokens and 3-D mem_k decay while a (1,)-shaped ScaleNorm gain does not"))
