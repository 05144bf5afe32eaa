"""Lab 04 exercises: write your own ``param_groups``, and predict the group of three named parameters."""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from xtlab.course import Exercise, ExerciseSet, Mistake, Verdict, call, describe
from xtlab.course.answers import mapping_problem
from xtlab.diagnostics.optimizer_groups import DECAY, NO_DECAY, check_param_groups, describe_parameters
from xtlab.labs.optimizer_groups.groups import row_named
from xtlab.labs.optimizer_groups.specimens import specimen_model, xtransformers_specimen
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
    """Empty when ``param_groups_fn`` groups ``model`` like the reference ``by_type``; else what is wrong.

    The learner's function gets a copy; the copy is graded against the untouched original, so a function that
    deletes or replaces parameters cannot pass by grading the model it emptied.
    """
    copy_for_learner = copy.deepcopy(model)
    given = call(param_groups_fn, copy_for_learner, EXERCISE_WEIGHT_DECAY, copy_args=False)
    original_names = [name for name, _ in model.named_parameters()]
    if [name for name, _ in copy_for_learner.named_parameters()] != original_names:
        return f"on the {model_name}, your function changed the model's parameters; group them, do not change them"
    try:
        groups = list(given)
    except TypeError:
        return f"on the {model_name}, your function returned {describe(given)}, not a list of groups"
    if not all(isinstance(group, Mapping) and "params" in group for group in groups):
        return f"on the {model_name}, every group must be a dict with 'params', but got {describe(groups)}"
    groups = [{**group, "params": list(group["params"])} for group in groups]
    try:
        check_param_groups(copy_for_learner, groups)
    except (TypeError, ValueError) as err:
        return f"on the {model_name}, the groups are not a valid partition: {err}"
    name_of = {id(p): name for name, p in copy_for_learner.named_parameters()}
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
        if row.name in yours and yours[row.name] != expected:
            wrong.append(f"{row.name} ({row.reason}) should get weight decay {expected:g}, yours gives "
                         f"{yours[row.name]:g}")
    if wrong:
        return f"on the {model_name}, {len(wrong)} parameter(s) are misplaced: " + "; ".join(wrong[:4])
    return ""


def check_param_groups_function(param_groups_fn: Callable[..., Any]) -> Verdict:
    """``param_groups_fn(model, weight_decay) -> groups`` must match the reference ``by_type`` grouping (weight
    decay for matrix weights; none for biases, norm gains, embeddings, memory tokens, mem_k/mem_v) on models you
    have not seen."""
    models = unseen_models()
    for model_name, model in models.items():
        problem = _grade_on(model_name, model, param_groups_fn)
        if problem:
            return Verdict.try_again(problem, "decide by what a parameter is (the module that holds it, its role), "
                                              "not by its name or its number of dimensions")
    return Verdict.passed(f"your grouping matches the reference on {len(models)} unseen models "
                          f"({', '.join(models)})")


PREDICTION_STRATEGY = "by_ndim"
PREDICTION_NAMES = ("rmsnorm_lm.memory_tokens", "scalenorm_lm.attn_layers.final_norm.g",
                    "rmsnorm_lm.attn_layers.layers.0.fn.mem_k")


def check_group_predictions(group_predictions: Callable[[], Mapping[str, str]]) -> Verdict:
    """``group_predictions()``: under ``by_ndim``, ``"decay"`` or ``"no_decay"`` for each name in
    ``PREDICTION_NAMES`` (parameters of the lab's specimen)."""
    predictions = call(group_predictions)
    problem = mapping_problem(predictions, PREDICTION_NAMES, (DECAY, NO_DECAY), "group_predictions()")
    if problem is not None:
        return problem
    rows = describe_parameters(specimen_model(), PREDICTION_STRATEGY)
    wrong = []
    for name in PREDICTION_NAMES:
        row = row_named(rows, name)
        if predictions[name] != row.group:
            wrong.append(f"{name} has shape {row.shape}")
    if wrong:
        return Verdict.try_again(f"{len(wrong)} of {len(PREDICTION_NAMES)} wrong under {PREDICTION_STRATEGY}: "
                                 + "; ".join(wrong), "by_ndim looks only at ndim, not at what a parameter is for")
    return Verdict.passed(f"all {len(PREDICTION_NAMES)} right: {PREDICTION_STRATEGY} looks only at ndim, so 2-D "
                          "memory tokens and 3-D mem_k decay while a (1,)-shaped ScaleNorm gain does not")


_MEMORY_LEAVES = ("memory_tokens", "mem_k", "mem_v")


def _by_type_reference(model, weight_decay):
    decay, no_decay, seen = [], [], set()
    for module in model.modules():
        for leaf, parameter in module.named_parameters(recurse=False):
            if id(parameter) in seen or not parameter.requires_grad:
                continue  # a tied Parameter is listed once; frozen ones are not trained
            seen.add(id(parameter))
            is_matrix = parameter.ndim >= 2 and not isinstance(module, nn.Embedding) and leaf not in _MEMORY_LEAVES
            (decay if is_matrix else no_decay).append(parameter)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _two_groups(model, weight_decay, decays):
    params = [p for p in model.parameters() if p.requires_grad]
    return [{"params": [p for p in params if decays(p)], "weight_decay": weight_decay},
            {"params": [p for p in params if not decays(p)], "weight_decay": 0.0}]


def _by_name_substring(model, weight_decay):
    exempt = {id(p) for name, p in model.named_parameters() if "bias" in name or "norm" in name}
    return _two_groups(model, weight_decay, lambda p: id(p) not in exempt)


def _forgets_memory_tokens(model, weight_decay):
    groups = _by_type_reference(model, weight_decay)
    memory = [p for name, p in model.named_parameters() if name.rsplit(".", 1)[-1] == "memory_tokens"]
    groups[0]["params"] += memory
    groups[1]["params"] = [p for p in groups[1]["params"] if all(p is not m for m in memory)]
    return groups


def _empties_the_model(model, weight_decay):
    for module in model.modules():
        module._parameters.clear()
    return []


_RIGHT_PREDICTIONS = {"rmsnorm_lm.memory_tokens": DECAY, "scalenorm_lm.attn_layers.final_norm.g": NO_DECAY,
                      "rmsnorm_lm.attn_layers.layers.0.fn.mem_k": DECAY}

EXERCISES = ExerciseSet(
    Exercise(
        name="my_param_groups",
        prompt="my_param_groups(model, weight_decay): two torch.optim groups, weight decay for matrix weights and "
               "none for biases, norm gains, embeddings, memory tokens and mem_k/mem_v (the by_type rule)",
        checker=check_param_groups_function,
        reference=_by_type_reference,
        mistakes=(
            Mistake("groups by ndim", lambda model, wd: _two_groups(model, wd, lambda p: p.ndim >= 2), "embedding"),
            Mistake("groups by name substring", _by_name_substring, "gain"),
            Mistake("forgets memory tokens", _forgets_memory_tokens, "memory tokens"),
            Mistake("deletes the parameters and returns no group", _empties_the_model, "changed the model"),
        ),
    ),
    Exercise(
        name="group_predictions",
        prompt="group_predictions(): a dict giving, for each name in PREDICTION_NAMES, the group ('decay' or "
               "'no_decay') that the by_ndim strategy puts it in",
        checker=check_group_predictions,
        reference=lambda: dict(_RIGHT_PREDICTIONS),
        mistakes=(
            Mistake("answers by role (by_type) instead of ndim", lambda: dict.fromkeys(_RIGHT_PREDICTIONS, NO_DECAY),
                    "memory_tokens has shape"),
            Mistake("a typo in a group", lambda: {**_RIGHT_PREDICTIONS, "rmsnorm_lm.memory_tokens": "decayed"},
                    "'decay' or 'no_decay'"),
        ),
    ),
)
