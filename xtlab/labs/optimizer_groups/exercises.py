"""Lab 04 exercises: build AdamW's parameter groups by the lab's decay rule, find parameters in no group or two,
decide decay for new kinds, and write AdamW's step by hand.

Every checker decides with the lab's rule (``rule.py``); none prints a reference answer."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from xtlab.course import Case, Exercise, ExerciseSet, Mistake, Verdict, call, case_failed, compare_values, describe
from xtlab.course.answers import mapping_problem
from xtlab.diagnostics.optimizer_groups import DECAY, NO_DECAY
from xtlab.labs.optimizer_groups.implementation_exercise import (
    MISTAKES as IMPLEMENTATION_MISTAKES,
)
from xtlab.labs.optimizer_groups.implementation_exercise import (
    check_choose_implementation,
    reference_choose_implementation,
)
from xtlab.labs.optimizer_groups.models import VOCAB, tied_by_assignment, xtransformers_decoder
from xtlab.labs.optimizer_groups.rule import KINDS, MEMORY_LEAVES, REASONS, decays, is_norm, rule_rows
from xtlab.seeding import seed_everything

EXERCISE_WEIGHT_DECAY = 0.05
STRING_WEIGHT_DECAY = "0.05"

# --- models the checkers use and the notebook never shows ------------------------------------------------------


class CenteredRMSNorm(nn.Module):
    """A norm no library ships: its gain ``scale`` is stored directly and 2-D, (1, dim)."""

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


class RootParameters(nn.Module):
    """Parameters registered on the root module itself: memory tokens, a per-channel scale and a mixing matrix."""

    def __init__(self, dim: int = 16):
        super().__init__()
        self.memory_tokens = nn.Parameter(torch.randn(4, dim))
        self.scale = nn.Parameter(torch.ones(dim))
        self.mixing = nn.Parameter(torch.randn(dim, dim) / dim**0.5)
        self.out = nn.Linear(dim, dim)


def _padded_lm() -> nn.Module:
    return nn.Sequential(nn.Embedding(20, 16, padding_idx=0), nn.LayerNorm(16), nn.Linear(16, 20))


def _xt_decoder(**norm: Any) -> nn.Module:
    from x_transformers import Decoder, TransformerWrapper

    return TransformerWrapper(num_tokens=20, max_seq_len=16, num_memory_tokens=2,
                              attn_layers=Decoder(dim=16, depth=2, heads=2, attn_dim_head=8, attn_num_mem_kv=2,
                                                  **norm))


def _frozen_first_block() -> nn.Module:
    model = _xt_decoder(use_rmsnorm=True)  # x-transformers' RMSNorm, gains stored as offsets from 1
    for parameter in model.attn_layers.layers[0].parameters():
        parameter.requires_grad_(False)
    return model


GROUP_MODELS: dict[str, Callable[[], nn.Module]] = {
    "a tied model (custom norm under 'pre', a 'pos_bias_mlp', head tied to an embedding 'lookup')": BiasMLPModel,
    "an nn.Embedding with padding_idx, nn.LayerNorm, a Linear": _padded_lm,
    "x-transformers with RMSNorm (offset gains) and its first block frozen": _frozen_first_block,
    "x-transformers with ScaleNorm stored directly (norm_add_unit_offset=False)":
        lambda: _xt_decoder(use_scalenorm=True, norm_add_unit_offset=False),
    "parameters registered on the root module": RootParameters,
    "no decayable parameter (an embedding and an nn.LayerNorm)": lambda: nn.Sequential(nn.Embedding(10, 8),
                                                                                         nn.LayerNorm(8)),
}
EDGE_MODELS = ("no decayable parameter (an embedding and an nn.LayerNorm)",)


def hidden_models() -> dict[str, nn.Module]:
    """The models ``build_param_groups`` is graded on, seeded, on the CPU."""
    seed_everything(1)
    with torch.device("cpu"):
        return {name: build() for name, build in GROUP_MODELS.items()}


# --- exercise 1: build the groups ------------------------------------------------------------------------------


def _is_real_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _reference_groups(model, weight_decay):
    if not _is_real_number(weight_decay):
        raise TypeError(f"weight_decay must be a real number (int or float), but got "
                        f"{type(weight_decay).__name__}: {weight_decay!r}")
    if not math.isfinite(weight_decay) or weight_decay < 0:
        raise ValueError(f"weight_decay must be a finite number >= 0, but got {weight_decay}")
    decayed, not_decayed, seen = [], [], set()
    for module in model.modules():
        for leaf, parameter in module.named_parameters(recurse=False):
            if id(parameter) in seen or not parameter.requires_grad:
                continue  # a tied Parameter is listed once, at its first module; frozen ones are not trained
            seen.add(id(parameter))
            (decayed if decays(leaf, parameter, module) else not_decayed).append(parameter)
    return [{"params": decayed, "weight_decay": float(weight_decay)}, {"params": not_decayed, "weight_decay": 0.0}]


def _proxy_ndim(leaf, parameter, module):
    return parameter.ndim >= 2


def _proxy_every_norm_exempt(leaf, parameter, module):
    return not is_norm(module) and not getattr(module, "unit_offset", False) and decays(leaf, parameter, module)


PROXIES: dict[str, Callable[[str, torch.Tensor, nn.Module], bool]] = {
    "the ndim rule (p.ndim >= 2 decays)": _proxy_ndim,
    "every norm gain exempt, however it is stored (the rule decays a gain whose module has unit_offset=True)":
        _proxy_every_norm_exempt,
}


def _by_name(name: str) -> bool:
    return not any(word in name for word in ("bias", "norm", "emb", *MEMORY_LEAVES))


def _proxy_hint(model: nn.Module, yours: dict[str, float]) -> str:
    modules = dict(model.named_modules())
    rows = [(name, p, modules[name.rpartition(".")[0]], name.rpartition(".")[2])
            for name, p in model.named_parameters() if name in yours]
    if all((yours[name] > 0) == _by_name(name) for name, *_ in rows):
        return ("your grouping is a name-substring rule ('bias' in name...): it misses norm gains whose name says "
                "nothing, and exempts matrices whose name holds a keyword")
    for proxy, rule in PROXIES.items():
        if all((yours[name] > 0) == rule(leaf, p, owner) for name, p, owner, leaf in rows):
            return f"your grouping is {proxy}"
    return ""


def _weight_decay_problem(value: Any, where: str) -> str:
    if not _is_real_number(value):
        return (f"{where} has weight_decay {describe(value)}: expected a real number (int or float), "
                f"not {type(value).__name__}")
    return ""


def _grade_groups(model_name: str, model: nn.Module, fn: Callable[..., Any]) -> str:
    """Empty when ``fn`` groups a copy of ``model`` as the rule says; else what is wrong."""
    learner_copy = copy.deepcopy(model)
    before = [(n, p.detach().clone()) for n, p in learner_copy.named_parameters()]
    given = call(fn, learner_copy, EXERCISE_WEIGHT_DECAY, copy_args=False)
    after = list(learner_copy.named_parameters())
    if [n for n, _ in before] != [n for n, _ in after] or not all(
            torch.equal(b, a.detach()) for (_, b), (_, a) in zip(before, after, strict=True)):
        return "your function changed the model's parameters; group them, do not change them"
    if isinstance(given, (Mapping, str, torch.Tensor)) or not isinstance(given, (list, tuple)):
        return f"your function returned {describe(given)}, not a list of two group dicts"
    if len(given) != 2 or not all(isinstance(g, Mapping) and "params" in g and "weight_decay" in g for g in given):
        return (f"return exactly two groups, dicts with 'params' and 'weight_decay' (decayed first, then the rest), "
                f"but got {describe(given)}")
    for index, group in enumerate(given):
        problem = _weight_decay_problem(group["weight_decay"], f"group {index}")
        if problem:
            return problem
    if (given[0]["weight_decay"], given[1]["weight_decay"]) != (EXERCISE_WEIGHT_DECAY, 0.0):
        return (f"the groups' weight decays are {given[0]['weight_decay']!r} and {given[1]['weight_decay']!r}; "
                f"expected the weight_decay argument ({EXERCISE_WEIGHT_DECAY}) first, then 0.0")
    name_of = {id(p): n for n, p in learner_copy.named_parameters()}
    frozen = {n for n, p in learner_copy.named_parameters() if not p.requires_grad}
    yours: dict[str, float] = {}
    for group in given:
        members = group["params"]
        if isinstance(members, torch.Tensor) or not isinstance(members, (list, tuple)):
            return f"a group's 'params' is {describe(members)}, not a list of parameters"
        for parameter in members:
            name = name_of.get(id(parameter))
            if name is None:
                return "a group holds a tensor that is not one of the model's parameters"
            if name in frozen:
                return (f"{name} is frozen (requires_grad=False) and listed in a group: leave frozen parameters "
                        "out, the optimizer must not touch them")
            if name in yours:
                return (f"{name} is listed twice (a parameter tied by assignment is seen under two modules: list "
                        "each Parameter once, by identity)")
            yours[name] = float(group["weight_decay"])
    rows = rule_rows(learner_copy)
    missing = [row.name for row in rows if row.name not in yours]
    if missing:
        return f"these trainable parameters are in no group: {missing[:4]}"
    wrong = [f"{row.name} ({row.kind}) belongs in {row.group}" for row in rows
             if (yours[row.name] > 0) != (row.group == DECAY)]
    if wrong:
        hint = _proxy_hint(learner_copy, yours)
        return f"{len(wrong)} parameter(s) misplaced: " + "; ".join(wrong[:3]) + (f". {hint}" if hint else "")
    return ""


def _refuses_string(fn: Callable[..., Any]) -> str:
    """Empty when ``fn(model, "0.05")`` raises TypeError or ValueError; else what it did."""
    def attempt(model):
        try:
            return ("returned", fn(model, STRING_WEIGHT_DECAY))
        except (TypeError, ValueError) as err:
            return ("raised", err)

    outcome, value = call(attempt, nn.Linear(2, 2))
    if outcome == "raised":
        return ""
    return (f"with weight_decay={STRING_WEIGHT_DECAY!r} (a str) your function returned {type(value).__name__} "
            "instead of refusing it: expected a real number (int or float), so raise TypeError naming the type")


GROUP_HINT = ("decide by the rule printed at the top of the lab: the module that owns the parameter (nn.Embedding, "
              "a class whose name contains 'Norm' and its unit_offset) and its attribute name, each Parameter once "
              "by identity, frozen ones left out")


def check_build_param_groups(build_param_groups: Callable[..., Any]) -> Verdict:
    """``build_param_groups(model, weight_decay)`` groups every hidden model by the lab's rule and refuses a weight
    decay that is not a real number."""
    models = hidden_models()
    for model_name, model in models.items():
        problem = _grade_groups(model_name, model, build_param_groups)
        if problem:
            return case_failed(Case(model_name, edge=model_name in EDGE_MODELS), problem, GROUP_HINT)
    problem = _refuses_string(build_param_groups)
    if problem:
        return case_failed(Case(f"weight_decay={STRING_WEIGHT_DECAY!r}", edge=True), problem,
                           "check the argument first: isinstance(weight_decay, (int, float)) and not a bool")
    return Verdict.make_pass(f"your groups follow the rule on {len(models)} hidden models ({'; '.join(models)}) and "
                             f"you refuse weight_decay={STRING_WEIGHT_DECAY!r}")


def _walk(model, weight_decay, decide, dedupe=True, skip_frozen=True):
    decayed, not_decayed, seen = [], [], set()
    for module in model.modules():
        for leaf, parameter in module.named_parameters(recurse=False):
            if (dedupe and id(parameter) in seen) or (skip_frozen and not parameter.requires_grad):
                continue
            seen.add(id(parameter))
            (decayed if decide(leaf, parameter, module) else not_decayed).append(parameter)
    return [{"params": decayed, "weight_decay": weight_decay}, {"params": not_decayed, "weight_decay": 0.0}]


def _mistake_name_rule(model, weight_decay):
    _reference_groups(model, weight_decay)  # validates like the reference
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    return [{"params": [p for n, p in trainable if _by_name(n)], "weight_decay": weight_decay},
            {"params": [p for n, p in trainable if not _by_name(n)], "weight_decay": 0.0}]


def _mistake_ndim(model, weight_decay):
    _reference_groups(model, weight_decay)
    return _walk(model, weight_decay, _proxy_ndim)


def _mistake_every_norm(model, weight_decay):
    _reference_groups(model, weight_decay)
    return _walk(model, weight_decay, _proxy_every_norm_exempt)


def _mistake_tie_twice(model, weight_decay):
    _reference_groups(model, weight_decay)
    return _walk(model, weight_decay, decays, dedupe=False)


def _mistake_frozen_included(model, weight_decay):
    _reference_groups(model, weight_decay)
    return _walk(model, weight_decay, decays, skip_frozen=False)


def _mistake_string_accepted(model, weight_decay):
    return _walk(model, weight_decay, decays)


# --- exercise 2: parameters in no group or two groups -----------------------------------------------------------


def _groups_case(name: str) -> tuple[nn.Module, list[dict[str, Any]], dict[str, list[str]]]:
    """A model, faulty groups and the right answer, for each case the checker tries."""
    if name == "tied by assignment, groups from a module walk":
        model = tied_by_assignment(seed=2)
        return model, _walk(model, 0.1, decays, dedupe=False), {"missing": [], "duplicated": ["token_emb.weight"]}
    model = xtransformers_decoder(seed=2)
    params = dict(model.named_parameters())
    right = _reference_groups(model, 0.1)
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
    if name == "one parameter listed three times":
        to_k = params["attn_layers.layers.0.1.to_k.weight"]
        groups = [{**g, "params": list(g["params"])} for g in right]
        groups[0]["params"] += [to_k, to_k]
        return model, groups, {"missing": [], "duplicated": ["attn_layers.layers.0.1.to_k.weight"]}
    # "a frozen embedding left out on purpose"
    model.token_emb.emb.weight.requires_grad_(False)
    groups = [{**g, "params": [p for p in g["params"] if p.requires_grad]} for g in right]
    return model, groups, {"missing": [], "duplicated": []}


GROUP_CASES = ("memory parameters forgotten", "tied by assignment, groups from a module walk",
               "one missing, one listed twice (the counts match)", "one parameter listed three times",
               "a frozen embedding left out on purpose")


def check_find_group_problems(find_group_problems: Callable[..., Any]) -> Verdict:
    """``find_group_problems(model, groups)`` -> ``{"missing": [...], "duplicated": [...]}`` (names as
    ``model.named_parameters()`` gives them, each once; frozen parameters are not missing)."""
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
            if any(len(set(names)) != len(names) for names in got.values()):
                hint = "list each name once, however many times the parameter is listed"
            elif any(not p.requires_grad for p in model.parameters()):
                hint = "a frozen parameter (requires_grad=False) is left out on purpose: it is not missing"
            elif listed == trainable:
                hint = (f"the counts match here ({listed} listed, {trainable} trainable), so a count check sees "
                        "nothing: look at each parameter")
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


def _one_name_per_extra_listing(model, groups):
    seen: set[int] = set()
    name_of = {id(p): n for n, p in model.named_parameters()}
    duplicated = []
    for group in groups:
        for parameter in group["params"]:
            if id(parameter) in seen:
                duplicated.append(name_of[id(parameter)])
            seen.add(id(parameter))
    return {"missing": _reference_find(model, groups)["missing"], "duplicated": duplicated}


# --- exercise 3: decay for new parameter kinds, with a reason ---------------------------------------------------

NEW_KINDS = {
    "register tokens": "4 learned vectors (4, dim) appended to every sequence, like memory tokens",
    "LoRA matrices": "low-rank adapters A (r, dim) and B (dim, r) added to a frozen linear layer",
    "attention temperature": "one learned scalar per head (heads,), initialised at 1, multiplying the logits",
    "output gain offset": "a per-channel output gain stored as an offset from 1, (dim,), initialised at 0",
}
# which kind of the rule each new kind is: the right decisions are the rule's, read from its table
NEW_KIND_AS_RULE_KIND = {"register tokens": "memory tokens", "LoRA matrices": "matrix weight",
                         "attention temperature": "gain stored directly",
                         "output gain offset": "gain stored as offset from 1"}
_RIGHT_DECISIONS = {new: KINDS[kind] for new, kind in NEW_KIND_AS_RULE_KIND.items()}
DECISION_REASONS = ("linear map", "learned data", "gain stored directly", "offset from identity")


def check_decay_decisions(decay_decisions: Callable[[], Mapping[str, Any]]) -> Verdict:
    """``decay_decisions()``: for each kind in ``NEW_KINDS``, a pair ``(group, reason)`` with group "decay" or
    "no_decay" and reason one of ``DECISION_REASONS`` (keys of the rule's ``REASONS``)."""
    answer = call(decay_decisions)
    pairs = tuple((g, r) for g in (DECAY, NO_DECAY) for r in DECISION_REASONS)
    problem = mapping_problem(answer, NEW_KINDS, pairs, "decay_decisions()")
    if problem is not None:
        return problem
    groups = [kind for kind, (group, _) in _RIGHT_DECISIONS.items() if answer[kind][0] != group]
    if groups:
        kind = groups[0]
        return Verdict.make_try_again(f"{len(groups)} group(s) wrong, first {kind!r} ({NEW_KINDS[kind]}): you said "
                                      f"{answer[kind][0]!r}",
                                      "ask what a stored 0 would mean for it: a small map, a lost datum, a dead "
                                      "signal, or the identity (the rule at the top of the lab)")
    reasons = [kind for kind, (_, reason) in _RIGHT_DECISIONS.items() if answer[kind][1] != reason]
    if reasons:
        kind = reasons[0]
        return Verdict.make_try_again(f"every group is right, but the reason for {kind!r} is {answer[kind][1]!r}",
                                      f"pick the reason that says what decay does to it: {NEW_KINDS[kind]}")
    return Verdict.make_pass(f"all {len(NEW_KINDS)} decisions and reasons follow the lab's rule: decay pulls the "
                             "stored value to 0, so decide by what a stored 0 means")


def _by_ndim_decisions():
    return {"register tokens": (DECAY, "linear map"), "LoRA matrices": (DECAY, "linear map"),
            "attention temperature": (NO_DECAY, "gain stored directly"),
            "output gain offset": (NO_DECAY, "gain stored directly")}


# --- exercise 4: AdamW's step by hand ---------------------------------------------------------------------------

# per step, per parameter: "random", "zero" or "none" (grad left None)
GRAD_SCHEDULE = (
    ("random", "random", "random", "none"),
    ("random", "none", "random", "random"),
    ("random", "none", "random", "random"),
    ("random", "random", "zero", "none"),
    ("random", "random", "zero", "random"),
    ("random", "random", "zero", "random"),
)
SHAPES = ((4, 3), (5,), (2, 3), (3,))
STEP_CASES = (
    Case("lr 0.01, betas (0.9, 0.999), eps 1e-8, weight decay 0.1, float64", kwargs={
        "lr": 1e-2, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.1, "seed": 11}),
    Case("lr 0.03, betas (0.8, 0.95), eps 1e-6, weight decay 0.3, float64", kwargs={
        "lr": 3e-2, "betas": (0.8, 0.95), "eps": 1e-6, "weight_decay": 0.3, "seed": 12}),
    Case("weight decay 0, lr 0.1, betas (0.5, 0.9), float64", edge=True, kwargs={
        "lr": 0.1, "betas": (0.5, 0.9), "eps": 1e-8, "weight_decay": 0.0, "seed": 13}),
)


def _draws(seed: int) -> tuple[list[torch.Tensor], list[list[torch.Tensor | None]]]:
    generator = torch.Generator().manual_seed(seed)
    start = [torch.randn(shape, generator=generator, dtype=torch.float64) for shape in SHAPES]
    grads = []
    for row in GRAD_SCHEDULE:
        step = []
        for kind, shape in zip(row, SHAPES, strict=True):
            drawn = torch.randn(shape, generator=generator, dtype=torch.float64)
            step.append(None if kind == "none" else (torch.zeros_like(drawn) if kind == "zero" else drawn))
        grads.append(step)
    return start, grads


def _set_grads(params: list[torch.Tensor], grads: list[torch.Tensor | None]) -> None:
    for parameter, grad in zip(params, grads, strict=True):
        parameter.grad = None if grad is None else grad.clone()


def _group(params, kwargs) -> dict[str, Any]:
    return {"params": params, "lr": kwargs["lr"], "betas": kwargs["betas"], "eps": kwargs["eps"],
            "weight_decay": kwargs["weight_decay"]}


def _run(step_fn, kwargs, steps: int) -> list[torch.Tensor]:
    """The parameters after ``steps`` steps of ``step_fn`` (one of the wrong variants), for diagnosis."""
    start, grads = _draws(kwargs["seed"])
    params = [nn.Parameter(t.clone()) for t in start]
    state: dict = {}
    for step in range(steps):
        _set_grads(params, grads[step])
        step_fn(_group(params, kwargs), state)
    return [p.detach() for p in params]


def _reference_step(group, state):
    lr, (beta1, beta2), eps, weight_decay = group["lr"], group["betas"], group["eps"], group["weight_decay"]
    with torch.no_grad():
        for p in group["params"]:
            if p.grad is None:
                continue  # no gradient: AdamW skips the parameter entirely, decay and step count included
            s = state.setdefault(p, {"step": 0, "exp_avg": torch.zeros_like(p), "exp_avg_sq": torch.zeros_like(p)})
            s["step"] += 1
            p.mul_(1 - lr * weight_decay)  # decoupled decay, scaled by the learning rate
            s["exp_avg"].mul_(beta1).add_(p.grad, alpha=1 - beta1)
            s["exp_avg_sq"].mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
            m_hat = s["exp_avg"] / (1 - beta1 ** s["step"])
            v_hat = s["exp_avg_sq"] / (1 - beta2 ** s["step"])
            p.sub_(lr * m_hat / (v_hat.sqrt() + eps))


def _variant(l2: bool = False, bias_correction: bool = True, decay_none: bool = False, skip_zero: bool = False):
    def step(group, state):
        lr, (beta1, beta2), eps, weight_decay = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        with torch.no_grad():
            for p in group["params"]:
                if p.grad is None:
                    if decay_none:
                        p.mul_(1 - lr * weight_decay)
                    continue
                if skip_zero and not p.grad.any():
                    continue
                s = state.setdefault(p, {"step": 0, "exp_avg": torch.zeros_like(p),
                                         "exp_avg_sq": torch.zeros_like(p)})
                s["step"] += 1
                grad = p.grad + weight_decay * p if l2 else p.grad
                if not l2:
                    p.mul_(1 - lr * weight_decay)
                s["exp_avg"].mul_(beta1).add_(grad, alpha=1 - beta1)
                s["exp_avg_sq"].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                c1, c2 = (1 - beta1 ** s["step"], 1 - beta2 ** s["step"]) if bias_correction else (1.0, 1.0)
                p.sub_(lr * (s["exp_avg"] / c1) / ((s["exp_avg_sq"] / c2).sqrt() + eps))
    return step


STEP_VARIANTS = {
    "weight decay added to the gradient (an L2 penalty, Adam's coupled decay): AdamW multiplies the parameter "
    "by 1 - lr * weight_decay, outside the moments": _variant(l2=True),
    "no bias correction: divide the moments by 1 - beta1**t and 1 - beta2**t, t the parameter's own step count":
        _variant(bias_correction=False),
    "a parameter whose .grad is None was decayed: AdamW skips it entirely (no decay, no moments, no step count)":
        _variant(decay_none=True),
    "a zero gradient was skipped: it is still a gradient, so momentum and decay move the parameter":
        _variant(skip_zero=True),
}


def _diagnose(kwargs: dict, steps: int, got: list[torch.Tensor]) -> str:
    for hint, variant in STEP_VARIANTS.items():
        theirs = _run(variant, kwargs, steps)
        if all(torch.allclose(a, b, rtol=1e-10, atol=1e-13) for a, b in zip(got, theirs, strict=True)):
            return hint
    return ("follow AdamW: skip a None grad, step count + 1, decay the parameter by 1 - lr * weight_decay, update "
            "both moments, correct their bias, then subtract lr * m_hat / (sqrt(v_hat) + eps)")


def _refuses_string_decay(adamw_step: Callable[..., Any]) -> str:
    """Empty when ``adamw_step`` refuses ``weight_decay="0.05"`` (raises) and leaves the parameter as it was."""
    parameter = nn.Parameter(torch.ones(3, dtype=torch.float64))
    parameter.grad = torch.ones(3, dtype=torch.float64)

    def attempt(group, state):
        try:
            adamw_step(group, state)
        except (TypeError, ValueError):
            return "raised"
        return "returned"

    group = {"params": [parameter], "lr": 1e-2, "betas": (0.9, 0.999), "eps": 1e-8,
             "weight_decay": STRING_WEIGHT_DECAY}
    outcome = call(attempt, group, {}, copy_args=False)
    if outcome == "raised" and torch.equal(parameter.detach(), torch.ones(3, dtype=torch.float64)):
        return ""
    return (f"with weight_decay={STRING_WEIGHT_DECAY!r} (a str) your step {outcome} and left the parameter "
            f"{'changed' if not torch.equal(parameter.detach(), torch.ones(3, dtype=torch.float64)) else 'as it was'}"
            ": expected a real number (int or float); torch.optim.AdamW refuses it, so must yours (do not convert "
            "it with float())")


def check_adamw_step(adamw_step: Callable[..., Any]) -> Verdict:
    """``adamw_step(group, state)`` updates ``group["params"]`` in place as ``torch.optim.AdamW`` (for-loop) does,
    within 1e-10 in float64, over hidden steps with None and zero gradients."""
    for case in STEP_CASES:
        kwargs = dict(case.kwargs)
        start, grads = _draws(kwargs["seed"])
        reference = [nn.Parameter(t.clone()) for t in start]
        yours = [nn.Parameter(t.clone()) for t in start]
        optimizer = torch.optim.AdamW(reference, lr=kwargs["lr"], betas=kwargs["betas"], eps=kwargs["eps"],
                                      weight_decay=kwargs["weight_decay"], foreach=False)
        state: dict = {}
        for step, row in enumerate(grads):
            _set_grads(reference, row)
            _set_grads(yours, row)
            optimizer.step()
            returned = call(adamw_step, _group(yours, kwargs), state, copy_args=False)
            if returned is not None:
                return case_failed(case, f"adamw_step returned {describe(returned)}",
                                   "update the parameters in place (under torch.no_grad()) and return None")
            for index, (mine, theirs) in enumerate(zip(yours, reference, strict=True)):
                problem = compare_values(mine.detach(), theirs.detach(),
                                         name=f"parameter {index} {tuple(SHAPES[index])} after step {step + 1} "
                                              f"(its grad at that step: {GRAD_SCHEDULE[step][index]})",
                                         rtol=1e-10, atol=1e-13)
                if problem:
                    return case_failed(case, problem, _diagnose(kwargs, step + 1, [p.detach() for p in yours]))
    problem = _refuses_string_decay(adamw_step)
    if problem:
        return case_failed(Case(f"weight_decay={STRING_WEIGHT_DECAY!r}", edge=True), problem,
                           "let the arithmetic refuse it, or check isinstance(weight_decay, (int, float))")
    return Verdict.make_pass(f"your step matches torch.optim.AdamW to 1e-10 on {len(STEP_CASES)} hidden settings x "
                             f"{len(GRAD_SCHEDULE)} steps (None and zero gradients included) and refuses "
                             f"weight_decay={STRING_WEIGHT_DECAY!r}")


def _string_decay_accepted(group, state):
    return _reference_step({**group, "weight_decay": float(group["weight_decay"])}, state)


EXERCISES = ExerciseSet(
    Exercise(
        name="build_param_groups",
        prompt="build_param_groups(model, weight_decay): [{'params': decayed, 'weight_decay': weight_decay}, "
               "{'params': the rest, 'weight_decay': 0.0}] by the lab's decay rule (lab.DECAY_RULE), every "
               "trainable Parameter exactly once (by identity), frozen ones left out; raise TypeError when "
               "weight_decay is not a real number",
        checker=check_build_param_groups,
        reference=_reference_groups,
        mistakes=(
            Mistake("a name-substring rule ('bias' in name)", _mistake_name_rule, "a name-substring rule"),
            Mistake("p.ndim >= 2 decays, whatever the module", _mistake_ndim, "the ndim rule"),
            Mistake("every norm gain exempt, offsets too", _mistake_every_norm, "every norm gain exempt"),
            Mistake("a tied parameter in two groups", _mistake_tie_twice, "listed twice"),
            Mistake("frozen parameters included", _mistake_frozen_included, "is frozen"),
            Mistake("a string weight decay accepted", _mistake_string_accepted, "expected a real number"),
        ),
    ),
    Exercise(
        name="find_group_problems",
        prompt="find_group_problems(model, groups): {'missing': [names of trainable parameters in no group], "
               "'duplicated': [names of parameters in more than one listing, each once]}, names as "
               "model.named_parameters() gives them",
        checker=check_find_group_problems,
        reference=_reference_find,
        mistakes=(
            Mistake("trusts the counts, like the article's assertion", _trusts_counts, "the counts match"),
            Mistake("reports frozen parameters as missing", _frozen_are_missing, "frozen"),
            Mistake("names a duplicate once per extra listing", _one_name_per_extra_listing, "list each name once"),
        ),
    ),
    Exercise(
        name="decay_decisions",
        prompt="decay_decisions(): for each kind in lab.NEW_KINDS, a pair (group, reason): group 'decay' or "
               "'no_decay', reason one of lab.DECISION_REASONS",
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
    Exercise(
        name="adamw_step",
        prompt="adamw_step(group, state): one AdamW step, in place, as a for-loop over group['params'] (group holds "
               "'lr', 'betas', 'eps', 'weight_decay'); state maps each parameter to {'step', 'exp_avg', "
               "'exp_avg_sq'}, created at its first step; a parameter whose .grad is None is skipped",
        checker=check_adamw_step,
        reference=_reference_step,
        mistakes=(
            Mistake("L2 penalty added to the gradient", _variant(l2=True), "an L2 penalty"),
            Mistake("bias correction missing", _variant(bias_correction=False), "no bias correction"),
            Mistake("decay applied to a None-grad parameter", _variant(decay_none=True), "skips it entirely"),
            Mistake("a zero gradient skipped", _variant(skip_zero=True), "a zero gradient was skipped"),
            Mistake("a string weight decay converted with float()", _string_decay_accepted,
                    "expected a real number (int or float); torch.optim.AdamW refuses it"),
        ),
    ),
    Exercise(
        name="choose_implementation",
        prompt="choose_implementation(groups, fused=None, foreach=None): the flags to pass to torch.optim.AdamW "
               "({'fused': True}, {'foreach': True, 'fused': False} or {'foreach': False, 'fused': False}) for "
               "groups given as lists of (device type, dtype) pairs; True asks for an implementation, False rules it "
               "out, None leaves it to you (the fastest torch allows); raise ValueError naming the combination "
               "where torch refuses what was asked",
        checker=check_choose_implementation,
        reference=reference_choose_implementation,
        mistakes=tuple(Mistake(description, answer, hint) for description, answer, hint in IMPLEMENTATION_MISTAKES),
    ),
)

__all__ = ["EXERCISES", "EXERCISE_WEIGHT_DECAY", "GROUP_CASES", "GROUP_MODELS", "NEW_KINDS", "NEW_KIND_AS_RULE_KIND",
           "DECISION_REASONS", "REASONS", "MEMORY_LEAVES", "BiasMLPModel", "CenteredRMSNorm", "RootParameters",
           "hidden_models", "check_build_param_groups", "check_find_group_problems", "check_decay_decisions",
           "check_adamw_step", "check_choose_implementation"]
