"""The article's optimizer recipe (article 002, section "implementation example"), paraphrased in code, and what
it does to real models: parameters in the wrong group, in two groups or in none, its count assertion, fused AdamW.

The recipe walks every module and each parameter it holds directly. A parameter gets no decay when its full
name contains one of the keywords ``bias``, ``memory_tokens``, ``mem_k``, ``mem_v``, or when its module is one
of ``nn.LayerNorm``, ``ScaleNorm``, ``RMSNorm``, ``nn.Embedding``; every other parameter is decayed. It then
asserts that the two lists hold as many parameters as the model has trainable ones, and builds
``AdamW(groups, fused=True)``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from xtlab._checks import check_module, check_number
from xtlab.diagnostics.optimizer_groups import DECAY, NO_DECAY
from xtlab.labs.optimizer_groups.rule import rule_rows
from xtlab.model import RMSNorm, ScaleNorm

RECIPE_KEYWORDS = ("bias", "memory_tokens", "mem_k", "mem_v")


def recipe_module_types() -> tuple[type[nn.Module], ...]:
    """The recipe's no-decay module types: ``nn.LayerNorm``, ``ScaleNorm``, ``RMSNorm``, ``nn.Embedding``.

    ScaleNorm and RMSNorm are taken from both x_transformers (the article's library) and xtlab, the most
    generous reading: whatever the recipe misses below, it misses by its rule, not by an import.
    """
    from x_transformers.x_transformers import RMSNorm as XRMSNorm
    from x_transformers.x_transformers import ScaleNorm as XScaleNorm

    return (nn.LayerNorm, XScaleNorm, XRMSNorm, ScaleNorm, RMSNorm, nn.Embedding)


@dataclass(frozen=True)
class RecipeDecision:
    """One (module, parameter) pair the recipe visited: the name it built, the group it chose and the rule."""

    name: str
    parameter: nn.Parameter
    group: str
    rule: str


def recipe_decisions(model: nn.Module) -> list[RecipeDecision]:
    """The recipe's loop: ``named_modules()``, then ``named_parameters(recurse=False)`` of each module."""
    check_module("model", model)
    module_types = recipe_module_types()
    decisions = []
    for module_name, module in model.named_modules():
        for param_name, param in module.named_parameters(recurse=False):
            full_name = f"{module_name}.{param_name}" if module_name else param_name
            keyword = next((kw for kw in RECIPE_KEYWORDS if kw in full_name), None)
            if keyword is not None:
                decisions.append(RecipeDecision(full_name, param, NO_DECAY, f"keyword {keyword!r} in its name"))
            elif isinstance(module, module_types):
                decisions.append(RecipeDecision(full_name, param, NO_DECAY, f"module type {type(module).__name__}"))
            else:
                decisions.append(RecipeDecision(full_name, param, DECAY, f"no rule matched ({type(module).__name__})"))
    return decisions


def article_create_optimizer(model: nn.Module, betas: tuple[float, float] = (0.9, 0.95), lr: float = 0.001,
                             decay: float = 0.1) -> torch.optim.AdamW:
    """The article's ``createOptimizer``, as it describes it: keyword and module-type rules, the count
    assertion, ``AdamW(..., fused=True)``. Raises what the article's code raises (AssertionError, ValueError...)."""
    decisions = recipe_decisions(model)
    decay_params = [d.parameter for d in decisions if d.group == DECAY]
    no_decay_params = [d.parameter for d in decisions if d.group == NO_DECAY]
    total_params = sum(1 for p in model.parameters() if p.requires_grad)
    assert len(decay_params) + len(no_decay_params) == total_params, (
        f"{len(decay_params)} decay + {len(no_decay_params)} no-decay parameters != {total_params} trainable")
    optim_groups = [{"params": decay_params, "weight_decay": decay}, {"params": no_decay_params, "weight_decay": 0.0}]
    return torch.optim.AdamW(optim_groups, lr=lr, betas=betas, fused=True)


@dataclass(frozen=True)
class ReferenceRow:
    """Where a parameter belongs: the lab's decay rule (``rule.py``), by its owning module and how it is stored."""

    name: str
    shape: tuple[int, ...]
    category: str
    group: str
    reason: str
    stored_as_offset: bool


def reference_rows(model: nn.Module) -> list[ReferenceRow]:
    """Every trainable parameter of ``model`` with its group under the lab's decay rule (``rule_rows``)."""
    return [ReferenceRow(row.name, row.shape, row.kind, row.group, row.reason,
                         row.kind == "gain stored as offset from 1") for row in rule_rows(model)]


@dataclass(frozen=True)
class Placement:
    """A parameter that a grouping put in the wrong group, in two groups or in none.

    Attributes:
        name: its name in ``model.named_parameters()`` (a tied parameter: its first name).
        problem: ``"wrong group"``, ``"two groups"`` or ``"no group"``.
        placed: the groups it landed in, as ``"decay"`` / ``"no_decay"`` (one per listing).
        expected: the group it belongs to, and why.
        rule: why the grouping put it there (the recipe's rule, when known).
        effect: what weight decay does to it, in words.
    """

    name: str
    shape: tuple[int, ...]
    problem: str
    placed: tuple[str, ...]
    expected: str
    rule: str
    effect: str


def _effect(row: ReferenceRow, placed: tuple[str, ...]) -> str:
    if len(placed) != 1:
        return "torch.optim refuses a parameter in two groups" if placed else "the optimizer never updates it"
    if placed[0] == NO_DECAY:
        return f"a {row.category} left without decay"
    if row.stored_as_offset:
        return "decay pulls the stored offset to 0: the gain towards 1 (identity)"
    return f"decay pulls the {row.category} towards 0"


def placements(model: nn.Module, groups: Iterable[dict[str, Any]], rules: dict[int, list[str]] | None = None
               ) -> list[Placement]:
    """Every trainable parameter that ``groups`` (two dicts: weight decay > 0, then 0) misplace against the
    reference (``reference_rows``); ``rules`` maps ``id(parameter)`` to the grouping's reasons, when known."""
    check_module("model", model)
    groups = list(groups)
    placed: dict[int, list[str]] = {}
    for group in groups:
        label = DECAY if group.get("weight_decay", 0.0) > 0 else NO_DECAY
        for parameter in group["params"]:
            placed.setdefault(id(parameter), []).append(label)
    parameters = dict(model.named_parameters())
    found = []
    for row in reference_rows(model):
        key = id(parameters[row.name])
        where = tuple(placed.get(key, ()))
        if len(where) == 1 and where[0] == row.group:
            continue
        problem = "wrong group" if len(where) == 1 else ("two groups" if where else "no group")
        rule = "; ".join((rules or {}).get(key, [])) or "-"
        found.append(Placement(row.name, row.shape, problem, where, f"{row.group} ({row.reason})", rule,
                               _effect(row, where)))
    return found


@dataclass(frozen=True)
class RecipeRun:
    """The article's recipe on one model.

    Attributes:
        model_name: which model.
        tensors, elements: its distinct parameters and their elements.
        listed: how many parameters the recipe's two lists hold together (a tie counts twice).
        trainable: the assertion's other side, ``sum(1 for p in model.parameters() if p.requires_grad)``.
        assertion_holds: ``listed == trainable``.
        problems: parameters in the wrong group, in two groups or in none.
        optimizer_outcome: what ``article_create_optimizer`` did: "built with fused=True, stepped" or the error.
        fused_outcome: what ``AdamW(groups, fused=True)`` does on the groups even past a failed assertion.
        groups_by_kind: the rule's kind of each parameter -> the groups the recipe's listings put that kind in.
        decayed_gains: the norm gains the recipe put in its decay list (the article means to exempt them all).
    """

    model_name: str
    tensors: int
    elements: int
    listed: int
    trainable: int
    assertion_holds: bool
    problems: list[Placement]
    optimizer_outcome: str
    fused_outcome: str
    groups_by_kind: dict[str, tuple[str, ...]]
    decayed_gains: tuple[str, ...]

    def count(self, problem: str) -> int:
        return sum(p.problem == problem for p in self.problems)


def _error_text(err: BaseException) -> str:
    return f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}".rstrip(": ")


def _fused_step(groups: list[dict[str, Any]]) -> str:
    """Build ``AdamW(groups, fused=True)`` and take one step on zero gradients; the outcome in words."""
    try:
        optimizer = torch.optim.AdamW(groups, lr=1e-3, fused=True)
        for group in groups:
            for parameter in group["params"]:
                parameter.grad = torch.zeros_like(parameter)
        optimizer.step()
    except (RuntimeError, ValueError, TypeError) as err:
        return _error_text(err)
    finally:
        for group in groups:
            for parameter in group["params"]:
                parameter.grad = None
    return "built with fused=True, stepped"


def run_article_recipe(model_name: str, model: nn.Module, weight_decay: float = 0.1) -> RecipeRun:
    """Run the recipe on a copy of ``model``: its groups against the reference, its assertion, and fused AdamW
    (one step on zero gradients, so the copy only sees weight decay; ``model`` itself is left untouched)."""
    check_module("model", model)
    model = copy.deepcopy(model)
    check_number("weight_decay", weight_decay, minimum=0.0)
    if weight_decay == 0:
        raise ValueError("weight_decay must be > 0 here, or the two groups cannot be told apart, but got 0")
    decisions = recipe_decisions(model)
    rules: dict[int, list[str]] = {}
    for d in decisions:
        rules.setdefault(id(d.parameter), []).append(f"{d.group}: {d.rule}")
    groups = [{"params": [d.parameter for d in decisions if d.group == DECAY], "weight_decay": weight_decay},
              {"params": [d.parameter for d in decisions if d.group == NO_DECAY], "weight_decay": 0.0}]
    trainable = sum(1 for p in model.parameters() if p.requires_grad)
    try:
        optimizer = article_create_optimizer(model, decay=weight_decay)
        outcome = _fused_step(optimizer.param_groups)
    except (AssertionError, RuntimeError, ValueError, TypeError) as err:
        outcome = _error_text(err)
    kind_of = {id(parameters): row.kind for row in rule_rows(model)
               for name, parameters in model.named_parameters() if name == row.name}
    by_kind: dict[str, set[str]] = {}
    for d in decisions:
        by_kind.setdefault(kind_of[id(d.parameter)], set()).add(d.group)
    decayed_gains = tuple(d.name for d in decisions
                          if d.group == DECAY and kind_of[id(d.parameter)].startswith("gain stored"))
    tensors = len(list(model.parameters()))
    return RecipeRun(model_name, tensors, sum(p.numel() for p in model.parameters()), len(decisions), trainable,
                     len(decisions) == trainable, placements(model, groups, rules), outcome, _fused_step(groups),
                     {kind: tuple(sorted(found)) for kind, found in by_kind.items()}, decayed_gains)
