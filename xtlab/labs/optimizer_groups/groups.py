"""Lab 04 experiments: inspect the parameter groups, compare the two strategies, and catch grouping mistakes.

Pure functions over ``xtlab.diagnostics.optimizer_groups``; they return plain dataclasses (no printing).
Training experiments live in ``optimizer_groups_training``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import torch
from torch import nn

from xtlab.diagnostics.optimizer_groups import (
    DECAY,
    EXEMPT_CATEGORIES,
    NO_DECAY,
    ParameterRow,
    build_adamw,
    check_param_groups,
    describe_parameters,
    strategy_disagreements,
)
from xtlab.labs.optimizer_groups.specimens import small_lm, specimen_model, xtransformers_specimen
from xtlab.model import tie_naively
from xtlab.seeding import seed_everything


@dataclass(frozen=True)
class GroupTotal:
    """How many parameters (``count``) and elements (``numel``) one group holds."""

    group: str
    count: int
    numel: int


@dataclass(frozen=True)
class GroupTable:
    """Every parameter's row under one strategy, the totals per group and the weight decay each group gets."""

    strategy: str
    exempt: tuple[str, ...]
    weight_decay: float
    rows: list[ParameterRow]
    totals: list[GroupTotal]

    def decay_of(self, group: str) -> float:
        """The weight decay the optimizer applies to ``group``."""
        return self.weight_decay if group == DECAY else 0.0


def group_totals(rows: Iterable[ParameterRow]) -> list[GroupTotal]:
    """Count and numel per group, ``decay`` first, then ``no_decay`` (and ``frozen`` when any)."""
    rows = list(rows)
    groups = [DECAY, NO_DECAY] + sorted({row.group for row in rows} - {DECAY, NO_DECAY})
    return [GroupTotal(group, sum(row.group == group for row in rows), sum(row.numel for row in rows
                                                                           if row.group == group))
            for group in groups]


@lru_cache(maxsize=4)
def _cached_specimen(norm_unit_offset: bool = False) -> nn.Module:
    return specimen_model(norm_unit_offset=norm_unit_offset)


def group_table(strategy: str = "by_type", exempt: Iterable[str] = EXEMPT_CATEGORIES, weight_decay: float = 0.1,
                model: nn.Module | None = None) -> GroupTable:
    """The groups table of ``model`` (default: the lab's ``TwoNormLM`` specimen).

    Args:
        strategy: ``"by_type"`` or ``"by_ndim"``.
        exempt: categories with no decay under ``"by_type"`` (see ``EXEMPT_CATEGORIES``).
        weight_decay: the decay group's weight decay (>= 0).

    Raises:
        ValueError / TypeError: an unknown strategy or category, or a negative weight decay.
    """
    if isinstance(weight_decay, bool) or not isinstance(weight_decay, (int, float)) or weight_decay < 0:
        raise ValueError(f"weight_decay must be a number >= 0, but got {weight_decay!r}")
    model = _cached_specimen() if model is None else model
    exempt = tuple(exempt) if not isinstance(exempt, str) else exempt
    rows = describe_parameters(model, strategy, exempt)
    return GroupTable(strategy, tuple(exempt), float(weight_decay), rows, group_totals(rows))


@dataclass(frozen=True)
class Disagreement:
    """One parameter the two strategies put in different groups, with each strategy's reason."""

    name: str
    shape: tuple[int, ...]
    category: str
    by_type_group: str
    by_type_reason: str
    by_ndim_group: str
    by_ndim_reason: str


def disagreements(model: nn.Module | None = None) -> list[Disagreement]:
    """The rows where ``by_type`` and ``by_ndim`` disagree (default model: the lab's specimen)."""
    model = _cached_specimen() if model is None else model
    return [Disagreement(t.name, t.shape, t.category, t.group, t.reason, n.group, n.reason)
            for t, n in strategy_disagreements(model)]


def row_named(rows: Iterable[ParameterRow], name: str) -> ParameterRow:
    """The row of parameter ``name``; ValueError naming it when absent."""
    for row in rows:
        if row.name == name:
            return row
    raise ValueError(f"no parameter named {name!r} in these rows")


@dataclass(frozen=True)
class GroupingMistake:
    """What torch.optim and xtlab's check each say about one faulty grouping.

    Attributes:
        description: the mistake in words.
        torch_error: the exception text torch.optim raised while building AdamW ("" if it built fine).
        torch_silent_damage: when torch built it fine, what then went wrong ("" otherwise).
        xtlab_error: the ValueError text of ``check_param_groups``.
    """

    description: str
    torch_error: str
    torch_silent_damage: str
    xtlab_error: str


def _torch_and_xtlab_verdicts(model: nn.Module, groups: list[dict]) -> tuple[str, torch.optim.Optimizer | None, str]:
    try:
        optimizer, torch_error = torch.optim.AdamW(groups, lr=1e-2), ""
    except ValueError as err:
        optimizer, torch_error = None, f"{type(err).__name__}: {err}"
    try:
        check_param_groups(model, groups)
        xtlab_error = ""
    except ValueError as err:
        xtlab_error = f"{type(err).__name__}: {err}"
    return torch_error, optimizer, xtlab_error


def forgotten_parameter_mistake() -> GroupingMistake:
    """A hand-written grouping that walks Linear/Embedding/norm modules and so forgets the memory tokens and mem_k/v.

    torch.optim accepts it; one AdamW step then leaves the forgotten parameters exactly as they were.
    """
    seed_everything(0)
    model = small_lm("rmsnorm")
    decay, no_decay = [], []
    for module in model.modules():  # the usual hand-written loop: only parameters owned by known module types
        if isinstance(module, nn.Linear):
            decay.append(module.weight)
            no_decay += [module.bias] if module.bias is not None else []
        elif isinstance(module, nn.Embedding) or "Norm" in type(module).__name__:
            no_decay += list(module.parameters(recurse=False))
    groups = [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}]
    torch_error, optimizer, xtlab_error = _torch_and_xtlab_verdicts(model, groups)
    damage = ""
    if optimizer is not None:
        before = {name: p.detach().clone() for name, p in model.named_parameters()}
        x = torch.randint(0, model.num_tokens, (2, 8), generator=torch.Generator().manual_seed(0))
        model(x).logsumexp(-1).mean().backward()
        optimizer.step()
        unchanged = [name for name, p in model.named_parameters()
                     if p.grad is not None and torch.equal(before[name], p.detach())]
        damage = f"after one AdamW step these parameters had a gradient but did not change: {unchanged}"
    return GroupingMistake("walk known module types; memory tokens and mem_k/mem_v belong to none",
                           torch_error, damage, xtlab_error)


def duplicate_tied_parameter_mistake() -> GroupingMistake:
    """A grouping over ``named_parameters(remove_duplicate=False)`` of a naively tied model.

    The tied weight is listed under ``token_emb.weight`` (no decay, embedding) and ``to_logits.weight``
    (decay, matrix): the same Parameter lands in both groups.
    """
    seed_everything(0)
    model = small_lm("rmsnorm")
    model.to_logits = nn.Linear(model.dim, model.num_tokens, bias=False)
    tie_naively(model)  # to_logits.weight is token_emb.weight: one Parameter, two names
    decay, no_decay = [], []
    for name, parameter in model.named_parameters(remove_duplicate=False):
        (no_decay if parameter.ndim <= 1 or "emb" in name or "mem" in name else decay).append(parameter)
    groups = [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}]
    torch_error, _, xtlab_error = _torch_and_xtlab_verdicts(model, groups)
    return GroupingMistake("named_parameters(remove_duplicate=False) lists a tied weight under both names",
                           torch_error, "", xtlab_error)


@dataclass(frozen=True)
class AdamWChoice:
    """Which AdamW implementation ``build_adamw`` picked for a model on a device, and why."""

    implementation: str
    fused_available: bool
    reason: str


def adamw_choice(device: str | torch.device = "cpu") -> AdamWChoice:
    """Build AdamW over the specimen's groups on ``device`` and report the implementation it uses.

    The reason is the toolkit's own note, worded without the device name.
    """
    model = specimen_model().to(device)
    build = build_adamw(model, lr=1e-3, weight_decay=0.1)
    return AdamWChoice(build.implementation, build.implementation == "fused", build.note)


def classify_all(model: nn.Module, names: Iterable[str], strategy: str = "by_type") -> dict[str, str]:
    """The group of each named parameter under ``strategy``."""
    rows = describe_parameters(model, strategy)
    return {name: row_named(rows, name).group for name in names}


def groups_by_category(rows: Iterable[ParameterRow]) -> dict[str, set[str]]:
    """Category -> the set of groups its parameters landed in (one group each when the grouping is consistent)."""
    result: dict[str, set[str]] = {}
    for row in rows:
        result.setdefault(row.category, set()).add(row.group)
    return result


def xtransformers_table(strategy: str = "by_type", weight_decay: float = 0.1) -> GroupTable:
    """The groups table of a real x_transformers LM with every special parameter (see ``xtransformers_specimen``)."""
    return group_table(strategy, weight_decay=weight_decay, model=xtransformers_specimen())
