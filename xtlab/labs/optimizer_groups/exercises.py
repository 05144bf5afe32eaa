"""Lab 04 exercises: group by module type, find parameters in no group or two, decide decay for new kinds."""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from xtlab.course import Exercise, ExerciseSet, Mistake, Verdict, call, describe
from xtlab.course.answers import mapping_problem
from xtlab.diagnostics.optimizer_groups import DECAY, NO_DECAY
from xtlab.labs.optimizer_groups.models import VOCAB, tied_by_assignment, xtransformers_decoder
from xtlab.labs.optimizer_groups.recipe import reference_rows
from xtlab.model import XTransformer
from xtlab.seeding import seed_everything

EXERCISE_WEIGHT_DECAY = 0.05
MEMORY_LEAVES = ("memory_tokens", "mem_k", "mem_v")

# --- models the checkers use and the notebook never shows ------------------------------------------------------


class CenteredRMSNorm(nn.Module):
    """A norm no library ships: its gain ``scale`` is stored 2-D, (1, dim)."""

    def __init__(self, dim: int):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x - x.mean(-1, keepdim=True)
        return x * x.pow(2).mean(-1, keepdim=True).add(1e-6).rsqrt() * self.scale


class BiasMLPModel(nn.Module):
    """A toy LM whose custom norm sits under ``pre`` and whose position-bias MLP has 'bias' in its name."""

    def __init__(self, dim: int = 16, heads: int = 2):
        super().__init__()
        self.lookup = nn.Embedding(VOCAB, dim)
        self.pre = CenteredRMSNorm(dim)
        self.pos_bias_mlp = nn.Sequential(nn.Linear(1, 8), nn.SiLU(), nn.Linear(8, heads))
        self.mix = nn.Linear(dim, dim)
        self.head = nn.Linear(dim, VOCAB, bias=False)
        self.head.weight = self.lookup.weight  # tied by assignment: the embedding's listing comes first

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.mix(self.pre(self.lookup(x))))


def unseen_models() -> dict[str, nn.Module]:
    """The models ``group_by_module_type`` is graded on, seeded, on the CPU."""
    seed_everything(1)
    with torch.device("cpu"):
        encoder_decoder = XTransformer(dim=32, enc_num_tokens=20, enc_depth=1, enc_heads=2, enc_max_seq_len=16,
                                       dec_num_tokens=20, dec_depth=1, dec_heads=2, dec_max_seq_len=16,
                                       enc_attn_num_mem_kv=2, dec_num_memory_tokens=2, dec_tie_embedding=True)
        custom = BiasMLPModel()
    return {"custom model (CenteredRMSNorm under 'pre', a 'pos_bias_mlp')": custom,
            "x_transformers decoder": xtransformers_decoder(seed=1),
            "xtlab encoder-decoder (XTransformer)": encoder_decoder}


# --- exercise 1: group by module type --------------------------------------------------------------------------


def _by_ndim(name: str, parameter: torch.Tensor) -> bool:
    return parameter.ndim >= 2


def _by_name(name: str, parameter: torch.Tensor) -> bool:
    return not any(word in name for word in ("bias", "norm", "emb", *MEMORY_LEAVES))


PROXIES: dict[str, Callable[[str, torch.Tensor], bool]] = {"the ndim rule": _by_ndim,
                                                            "a name-substring rule": _by_name}


def _proxy_hint(model: nn.Module, yours: dict[str, float]) -> str:
    for proxy, decays in PROXIES.items():
        if all((yours.get(name, 0.0) > 0) == decays(name, p) for name, p in model.named_parameters()):
            return (f"your grouping is {proxy}: it gives the same group as "
                    f"{'p.ndim >= 2' if proxy == 'the ndim rule' else 'words in the name'} on every parameter here")
    return ""


def _grade_grouping(model_name: str, model: nn.Module, fn: Callable[..., Any]) -> str:
    """Empty when ``fn`` groups a copy of ``model`` like the reference; else what is wrong."""
    learner_copy = copy.deepcopy(model)
    given = call(fn, learner_copy, EXERCISE_WEIGHT_DECAY, copy_args=False)
    if [n for n, _ in learner_copy.named_parameters()] != [n for n, _ in model.named_parameters()]:
        return f"on the {model_name}, your function changed the model's parameters; group them, do not change them"
    if isinstance(given, (Mapping, str, torch.Tensor)) or not isinstance(given, (list, tuple)):
        return f"on the {model_name}, your function returned {describe(given)}, not a list of group dicts"
    if not all(isinstance(g, Mapping) and "params" in g and "weight_decay" in g for g in given):
        return (f"on the {model_name}, every group must be a dict with 'params' and 'weight_decay', but got "
                f"{describe(given)}")
    name_of = {id(p): n for n, p in learner_copy.named_parameters()}
    yours: dict[str, float] = {}
    for group in given:
        for parameter in list(group["params"]):
            name = name_of.get(id(parameter))
            if name is None:
                return f"on the {model_name}, a group holds a tensor that is not one of the model's parameters"
            if name in yours:
                return (f"on the {model_name}, {name} is listed twice (a parameter tied by assignment is seen under "
                        "two modules: list each Parameter once, at its first module)")
            yours[name] = float(group["weight_decay"])
    missing = [row.name for row in reference_rows(model) if row.name not in yours]
    if missing:
        return f"on the {model_name}, these trainable parameters are in no group: {missing[:4]}"
    wrong = [f"{row.name} ({row.reason}) should get weight decay "
             f"{EXERCISE_WEIGHT_DECAY if row.group == DECAY else 0.0:g}, yours gives {yours[row.name]:g}"
             for row in reference_rows(model)
             if yours[row.name] != (EXERCISE_WEIGHT_DECAY if row.group == DECAY else 0.0)]
    if wrong:
        hint = _proxy_hint(learner_copy, yours)
        return (f"on the {model_name}, {len(wrong)} parameter(s) are misplaced: " + "; ".join(wrong[:4])
                + (f". {hint}" if hint else ""))
    return ""


def check_group_by_module_type(group_by_module_type: Callable[..., Any]) -> Verdict:
    """``group_by_module_type(model, weight_decay)`` must group like the reference on models you have not seen."""
    models = unseen_models()
    for model_name, model in models.items():
        problem = _grade_grouping(model_name, model, group_by_module_type)
        if problem:
            return Verdict.make_try_again(problem, "decide by the module that holds a parameter (Embedding, any class "
                                              "whose name contains 'Norm') and its attribute name, not by its "
                                              "full name or its number of dimensions")
    return Verdict.make_pass(f"your grouping matches the reference on {len(models)} unseen models: {', '.join(models)}")


def _is_norm(module: nn.Module) -> bool:
    return isinstance(module, (nn.LayerNorm, nn.GroupNorm)) or "Norm" in type(module).__name__


def _reference_grouping(model, weight_decay):
    decay, no_decay, seen = [], [], set()
    for module in model.modules():
        for leaf, parameter in module.named_parameters(recurse=False):
            if id(parameter) in seen or not parameter.requires_grad:
                continue
            seen.add(id(parameter))
            exempt = isinstance(module, nn.Embedding) or _is_norm(module) or leaf in MEMORY_LEAVES
            (decay if parameter.ndim >= 2 and not exempt else no_decay).append(parameter)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _two_groups(model, weight_decay, decays):
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    return [{"params": [p for n, p in params if decays(n, p)], "weight_decay": weight_decay},
            {"params": [p for n, p in params if not decays(n, p)], "weight_decay": 0.0}]


def _forgets_memory(model, weight_decay):
    groups = _reference_grouping(model, weight_decay)
    memory = {id(p) for n, p in model.named_parameters() if n.rsplit(".", 1)[-1] in MEMORY_LEAVES}
    groups[0]["params"] += [p for p in groups[1]["params"] if id(p) in memory]
    groups[1]["params"] = [p for p in groups[1]["params"] if id(p) not in memory]
    return groups


def _lists_ties_twice(model, weight_decay):
    decay, no_decay = [], []
    for module in model.modules():
        for leaf, parameter in module.named_parameters(recurse=False):
            exempt = isinstance(module, nn.Embedding) or _is_norm(module) or leaf in MEMORY_LEAVES
            (decay if parameter.ndim >= 2 and not exempt else no_decay).append(parameter)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


# --- exercise 2: parameters in no group or two groups -----------------------------------------------------------


def _groups_case(name: str) -> tuple[nn.Module, list[dict[str, Any]], dict[str, list[str]]]:
    """A model, faulty groups and the right answer, for each case the checker tries."""
    if name == "tied by assignment, groups from a module walk":
        model = tied_by_assignment(seed=2)
        groups = _lists_ties_twice(model, 0.1)
        return model, groups, {"missing": [], "duplicated": ["token_emb.weight"]}
    model = xtransformers_decoder(seed=2)
    params = dict(model.named_parameters())
    right = _reference_grouping(model, 0.1)
    if name == "memory parameters forgotten":
        forgotten = [params["memory_tokens"], params["attn_layers.layers.0.1.mem_k"]]
        groups = [{**g, "params": [p for p in g["params"] if all(p is not f for f in forgotten)]} for g in right]
        return model, groups, {"missing": ["memory_tokens", "attn_layers.layers.0.1.mem_k"], "duplicated": []}
    if name == "one missing, one listed twice (the counts match)":
        gamma, to_q = params["attn_layers.final_norm.gamma"], params["attn_layers.layers.0.1.to_q.weight"]
        groups = [{**g, "params": [p for p in g["params"] if p is not gamma]} for g in right]
        groups[1]["params"].append(to_q)
        return model, groups, {"missing": ["attn_layers.final_norm.gamma"],
                               "duplicated": ["attn_layers.layers.0.1.to_q.weight"]}
    # "a frozen embedding left out on purpose"
    model.token_emb.emb.weight.requires_grad_(False)
    groups = [{**g, "params": [p for p in g["params"] if p.requires_grad]} for g in right]
    return model, groups, {"missing": [], "duplicated": []}


GROUP_CASES = ("memory parameters forgotten", "tied by assignment, groups from a module walk",
               "one missing, one listed twice (the counts match)", "a frozen embedding left out on purpose")


def check_find_group_problems(find_group_problems: Callable[..., Any]) -> Verdict:
    """``find_group_problems(model, groups)`` -> ``{"missing": [...], "duplicated": [...]}`` (names as
    ``model.named_parameters()`` gives them; frozen parameters are not missing)."""
    for case in GROUP_CASES:
        model, groups, expected = _groups_case(case)
        answer = call(find_group_problems, model, groups)
        if not isinstance(answer, Mapping) or set(answer) != {"missing", "duplicated"}:
            return Verdict.make_try_again(f"find_group_problems(model, groups) returned {describe(answer)}",
                                     "return a dict with exactly two keys, 'missing' and 'duplicated'")
        if not all(isinstance(v, (list, tuple)) and all(isinstance(n, str) for n in v) for v in answer.values()):
            return Verdict.make_try_again(f"find_group_problems returned {describe(answer)}",
                                     "each value must be a list of parameter names (str)")
        got = {key: sorted(answer[key]) for key in expected}
        if got != {key: sorted(v) for key, v in expected.items()}:
            listed = sum(len(g["params"]) for g in groups)
            trainable = sum(p.requires_grad for p in model.parameters())
            hint = "compare parameters by identity (id(p) or `is`), and name each by model.named_parameters()"
            if listed == trainable:
                hint = (f"the counts match here ({listed} listed, {trainable} trainable), so a count check sees "
                        "nothing: look at each parameter")
            if any(not p.requires_grad for p in model.parameters()):
                hint = "a frozen parameter (requires_grad=False) is left out on purpose: it is not missing"
            return Verdict.make_try_again(f"case '{case}': expected {expected}, got {got}", hint)
    return Verdict.make_pass(f"right on all {len(GROUP_CASES)} cases: " + "; ".join(GROUP_CASES))


def _reference_find(model, groups):
    count: dict[int, int] = {}
    for group in groups:
        for parameter in group["params"]:
            count[id(parameter)] = count.get(id(parameter), 0) + 1
    named = list(model.named_parameters())
    return {"missing": [n for n, p in named if p.requires_grad and id(p) not in count],
            "duplicated": [n for n, p in named if count.get(id(p), 0) > 1]}


def _trusts_counts(model, groups):
    if sum(len(g["params"]) for g in groups) == sum(p.requires_grad for p in model.parameters()):
        return {"missing": [], "duplicated": []}
    return _reference_find(model, groups)


def _frozen_are_missing(model, groups):
    listed = {id(p) for g in groups for p in g["params"]}
    return {"missing": [n for n, p in model.named_parameters() if id(p) not in listed],
            "duplicated": _reference_find(model, groups)["duplicated"]}


# --- exercise 3: decay for new parameter kinds, with a reason ---------------------------------------------------

REASONS = {
    "linear map": "a linear map: decay keeps its weights small, the usual regulariser",
    "learned data": "learned data (tokens, keys, table rows): decay erases what it stores",
    "gain stored directly": "a gain stored directly: decay pulls it to 0, which switches its signal off",
    "offset from identity": "stored as an offset from 1: decay pulls it to 1, the identity",
}
NEW_KINDS = {
    "register tokens": "4 learned vectors (4, dim) appended to every sequence, like memory tokens",
    "LoRA matrices": "low-rank adapters A (r, dim) and B (dim, r) added to a frozen linear layer",
    "attention temperature": "one learned scalar per head (heads,), initialised at 1, multiplying the logits",
    "output gain offset": "a per-channel output gain stored as an offset from 1, (dim,), initialised at 0",
}
_RIGHT_DECISIONS = {"register tokens": (NO_DECAY, "learned data"), "LoRA matrices": (DECAY, "linear map"),
                    "attention temperature": (NO_DECAY, "gain stored directly"),
                    "output gain offset": (DECAY, "offset from identity")}


def check_decay_decisions(decay_decisions: Callable[[], Mapping[str, Any]]) -> Verdict:
    """``decay_decisions()``: for each kind in ``NEW_KINDS``, a pair ``(group, reason)`` with group "decay" or
    "no_decay" and reason a key of ``REASONS``."""
    answer = call(decay_decisions)
    pairs = tuple((g, r) for g in (DECAY, NO_DECAY) for r in REASONS)
    problem = mapping_problem(answer, NEW_KINDS, pairs, "decay_decisions()")
    if problem is not None:
        return problem
    groups = [kind for kind, (group, _) in _RIGHT_DECISIONS.items() if answer[kind][0] != group]
    if groups:
        kind = groups[0]
        return Verdict.make_try_again(f"{len(groups)} group(s) wrong, first {kind!r} ({NEW_KINDS[kind]}): you said "
                                 f"{answer[kind][0]!r}",
                                 "ask what a stored 0 would mean for it: a small map, a lost datum, a dead signal, "
                                 "or the identity (section 4 computed the last two)")
    reasons = [kind for kind, (_, reason) in _RIGHT_DECISIONS.items() if answer[kind][1] != reason]
    if reasons:
        kind = reasons[0]
        return Verdict.make_try_again(f"every group is right, but the reason for {kind!r} is {answer[kind][1]!r}",
                                 f"pick the reason that says what decay does to it: {NEW_KINDS[kind]}")
    return Verdict.make_pass(f"all {len(NEW_KINDS)} decisions and reasons right: decay pulls the stored value to 0, "
                          "so decide by what a stored 0 means")


def _by_ndim_decisions():
    return {"register tokens": (DECAY, "linear map"), "LoRA matrices": (DECAY, "linear map"),
            "attention temperature": (NO_DECAY, "gain stored directly"),
            "output gain offset": (NO_DECAY, "gain stored directly")}


EXERCISES = ExerciseSet(
    Exercise(
        name="group_by_module_type",
        prompt="group_by_module_type(model, weight_decay): two torch.optim groups, [{'params': decayed, "
               "'weight_decay': weight_decay}, {'params': the rest, 'weight_decay': 0.0}]; no decay for parameters "
               "of nn.Embedding and of any norm module (a class whose name contains 'Norm'), for memory_tokens / "
               "mem_k / mem_v, and for every 1-D parameter; each Parameter listed once",
        checker=check_group_by_module_type,
        reference=_reference_grouping,
        mistakes=(
            Mistake("groups by ndim", lambda m, wd: _two_groups(m, wd, _by_ndim), "the ndim rule"),
            Mistake("groups by name substring", lambda m, wd: _two_groups(m, wd, _by_name),
                    "a name-substring rule"),
            Mistake("forgets memory tokens", _forgets_memory, "memory tokens"),
            Mistake("lists a tied Parameter under both modules", _lists_ties_twice, "listed twice"),
        ),
    ),
    Exercise(
        name="find_group_problems",
        prompt="find_group_problems(model, groups): {'missing': [names of trainable parameters in no group], "
               "'duplicated': [names of parameters in more than one listing]}, names as model.named_parameters() "
               "gives them",
        checker=check_find_group_problems,
        reference=_reference_find,
        mistakes=(
            Mistake("trusts the counts, like the article's assertion", _trusts_counts, "the counts match"),
            Mistake("reports frozen parameters as missing", _frozen_are_missing, "frozen"),
        ),
    ),
    Exercise(
        name="decay_decisions",
        prompt="decay_decisions(): for each kind in lab.NEW_KINDS, a pair (group, reason): group 'decay' or "
               "'no_decay', reason a key of lab.REASONS",
        checker=check_decay_decisions,
        reference=lambda: dict(_RIGHT_DECISIONS),
        mistakes=(
            Mistake("decides by ndim", _by_ndim_decisions, "'register tokens'"),
            Mistake("never decays anything new", lambda: {k: (NO_DECAY, "learned data") for k in NEW_KINDS},
                    "'LoRA matrices'"),
            Mistake("right groups, a wrong reason",
                    lambda: {**_RIGHT_DECISIONS, "attention temperature": (NO_DECAY, "learned data")},
                    "the reason for 'attention temperature'"),
        ),
    ),
)
