"""Optimizer parameter groups: which parameters get weight decay, why, and an AdamW built over the groups.

Two strategies: ``"by_type"`` exempts biases, norm gains, embeddings, memory tokens and attention memory
key/values (each category can be switched off); ``"by_ndim"`` exempts every parameter with ndim <= 1.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn

from xtlab._checks import check_choice, check_module, check_number, check_strings, check_type, shown

STRATEGIES = ("by_type", "by_ndim")
EXEMPT_CATEGORIES = ("bias", "norm gain", "embedding", "memory tokens", "memory key/values")
DECAY, NO_DECAY, FROZEN = "decay", "no_decay", "frozen"

# the class-name match below covers nn.RMSNorm and any custom norm class (many codebases define their own)
_NORM_TYPES = (nn.LayerNorm, nn.GroupNorm, nn.LocalResponseNorm, nn.modules.batchnorm._NormBase)
_GAIN_NAMES = ("g", "gamma", "gain", "scale", "weight")


@dataclass(frozen=True)
class ParameterRow:
    """One parameter as the groups table shows it.

    Attributes:
        name: qualified name (tied parameters appear once, under their first name).
        shape: the parameter's shape.
        numel: number of elements.
        category: what it is ("bias", "norm gain", "embedding", "memory tokens", "memory key/values",
            "matrix weight" or "other").
        group: ``"decay"``, ``"no_decay"`` or ``"frozen"`` (excluded from the optimizer).
        reason: why it landed in its group, in words (e.g. "RMSNorm gain", "ndim 2 >= 2").
    """

    name: str
    shape: tuple[int, ...]
    numel: int
    category: str
    group: str
    reason: str


def _is_norm(module: nn.Module) -> bool:
    return isinstance(module, _NORM_TYPES) or "Norm" in type(module).__name__


def classify_parameter(name: str, parameter: torch.Tensor, owner: nn.Module) -> tuple[str, str]:
    """Return ``(category, reason)`` for the parameter ``name`` held directly by module ``owner``."""
    leaf = name.rsplit(".", 1)[-1]
    owner_type = type(owner).__name__
    if leaf == "memory_tokens":
        return "memory tokens", "memory tokens"
    if leaf in ("mem_k", "mem_v"):
        return "memory key/values", f"attention memory {'keys' if leaf == 'mem_k' else 'values'} ({leaf})"
    if (leaf == "bias" or leaf.endswith("_bias")) and parameter.ndim <= 1:  # e.g. MultiheadAttention.in_proj_bias
        return "bias", f"bias of {owner_type}" if leaf == "bias" else f"bias of {owner_type} ({leaf})"
    if _is_norm(owner) and leaf in _GAIN_NAMES:
        return "norm gain", f"{owner_type} gain"
    if leaf in ("g", "gamma", "gain") and parameter.ndim <= 1:
        return "norm gain", f"gain named {leaf!r}"
    if isinstance(owner, nn.Embedding) or "Embedding" in owner_type:
        return "embedding", f"embedding ({owner_type})"
    if parameter.ndim >= 2:
        return "matrix weight", f"matrix weight of {owner_type}"
    return "other", f"{parameter.ndim}-D parameter of {owner_type}"


def _check_strategy(strategy: Any, exempt: Any) -> frozenset[str]:
    check_choice("strategy", strategy, STRATEGIES)
    if isinstance(exempt, str) or not isinstance(exempt, Iterable):  # a lone str would be read letter by letter
        raise TypeError(f"exempt must be a collection of categories from {EXEMPT_CATEGORIES}, but got {exempt!r}")
    exempt = check_strings("exempt", exempt)
    unknown = sorted(set(exempt) - set(EXEMPT_CATEGORIES))
    if unknown:
        raise ValueError(f"exempt holds unknown categories {unknown}; expected some of {EXEMPT_CATEGORIES}")
    return frozenset(exempt)


def describe_parameters(
    model: nn.Module, strategy: str = "by_type", exempt: Iterable[str] = EXEMPT_CATEGORIES
) -> list[ParameterRow]:
    """One row per parameter of ``model``: name, shape, numel, category, group and the reason for the group.

    Args:
        model: any ``nn.Module``.
        strategy: ``"by_type"`` or ``"by_ndim"``.
        exempt: under ``"by_type"``, the categories that get no decay (default: all of ``EXEMPT_CATEGORIES``).
    """
    check_module("model", model)
    exempt = _check_strategy(strategy, exempt)
    modules = dict(model.named_modules())
    rows = []
    for name, parameter in model.named_parameters():
        owner = modules[name.rpartition(".")[0]]
        category, kind = classify_parameter(name, parameter, owner)
        if not parameter.requires_grad:
            group, reason = FROZEN, f"frozen (requires_grad=False), excluded: {kind}"
        elif strategy == "by_ndim":
            decays = parameter.ndim >= 2
            group, reason = (DECAY if decays else NO_DECAY), f"ndim {parameter.ndim} {'>= 2' if decays else '<= 1'}"
        else:
            group, reason = (NO_DECAY if category in exempt else DECAY), kind
        rows.append(ParameterRow(name, tuple(parameter.shape), parameter.numel(), category, group, reason))
    return rows


def strategy_disagreements(model: nn.Module) -> list[tuple[ParameterRow, ParameterRow]]:
    """Pairs ``(by_type row, by_ndim row)`` for the parameters the two strategies put in different groups."""
    by_type, by_ndim = describe_parameters(model, "by_type"), describe_parameters(model, "by_ndim")
    return [(first, second) for first, second in zip(by_type, by_ndim, strict=True) if first.group != second.group]


def param_groups(
    model: nn.Module,
    weight_decay: float,
    strategy: str = "by_type",
    exempt: Iterable[str] = EXEMPT_CATEGORIES,
) -> list[dict[str, Any]]:
    """Two optimizer parameter groups, ``decay`` (with ``weight_decay``) and ``no_decay`` (0.0).

    Every trainable parameter lands in exactly one group (tied parameters once); frozen parameters are left
    out (``describe_parameters`` reports them). Each group also carries ``group_name`` and ``param_names``,
    which torch optimizers keep and ignore.

    Raises:
        TypeError / ValueError: bad ``model``, ``weight_decay``, ``strategy`` or ``exempt``.
    """
    check_number("weight_decay", weight_decay, minimum=0.0)
    rows = describe_parameters(model, strategy, exempt)
    parameters = dict(model.named_parameters())
    groups = []
    for group_name, decay in ((DECAY, weight_decay), (NO_DECAY, 0.0)):
        names = [row.name for row in rows if row.group == group_name]
        groups.append(
            {"params": [parameters[name] for name in names], "weight_decay": decay,
             "group_name": group_name, "param_names": names}
        )
    check_param_groups(model, groups)
    return groups


@dataclass(frozen=True)
class GroupCheck:
    """What :func:`check_param_groups` found when the groups are complete and disjoint.

    Attributes:
        counts: number of parameters per group.
        numels: number of elements per group.
        frozen: names of frozen parameters (in no group, or ignored by the optimizer).
    """

    counts: tuple[int, ...]
    numels: tuple[int, ...]
    frozen: tuple[str, ...]


def check_param_groups(model: nn.Module, groups: Iterable[Any]) -> GroupCheck:
    """Check that ``groups`` holds every trainable parameter of ``model`` exactly once and nothing else.

    Args:
        model: any ``nn.Module``.
        groups: what you would pass to a torch optimizer: dicts with a ``"params"`` list.

    Raises:
        TypeError: ``groups`` is not a collection of dicts with a ``"params"`` list.
        ValueError: a parameter appears twice (named, with both places), a trainable parameter is in no
            group (named), or a group holds a tensor that is not one of the model's parameters.
    """
    check_module("model", model)
    if isinstance(groups, (dict, str, torch.Tensor)) or not isinstance(groups, Iterable):
        raise TypeError(f"groups must be a list of dicts with a 'params' list (what a torch optimizer takes), "
                        f"but got {shown(groups)}")
    groups = list(groups)
    name_of = {id(parameter): name for name, parameter in model.named_parameters()}
    place_of: dict[int, int] = {}
    counts, numels = [], []
    for index, group in enumerate(groups):
        if not isinstance(group, dict) or "params" not in group:
            raise TypeError(f"group {index} must be a dict with a 'params' list, but got {shown(group)}")
        members = group["params"]
        if not isinstance(members, (torch.Tensor, Iterable)) or isinstance(members, (str, dict)):
            raise TypeError(f"group {index}['params'] must be a list of parameters, but got {shown(members)}")
        members = [members] if isinstance(members, torch.Tensor) else list(members)
        for parameter in members:
            if not isinstance(parameter, torch.Tensor):
                raise TypeError(f"group {index}['params'] must hold the model's parameters, but holds "
                                f"{shown(parameter)}")
            if id(parameter) not in name_of:
                raise ValueError(f"group {index} holds a tensor of shape {tuple(parameter.shape)} that is not a "
                                 f"parameter of the model")
            if id(parameter) in place_of:
                raise ValueError(
                    f"parameter {name_of[id(parameter)]!r} appears twice: in group {place_of[id(parameter)]} and in "
                    f"group {index} (a tied parameter must be listed once)"
                )
            place_of[id(parameter)] = index
        counts.append(len(members))
        numels.append(sum(parameter.numel() for parameter in members))
    missing = [name for name, p in model.named_parameters() if p.requires_grad and id(p) not in place_of]
    if missing:
        raise ValueError(f"trainable parameters in no group (the optimizer would never update them): {missing}")
    frozen = tuple(name for name, p in model.named_parameters() if not p.requires_grad)
    return GroupCheck(tuple(counts), tuple(numels), frozen)


@dataclass(frozen=True)
class AdamWBuild:
    """An AdamW optimizer over :func:`param_groups`, and which implementation it uses.

    Attributes:
        optimizer: the ``torch.optim.AdamW``.
        implementation: ``"fused"`` or ``"default"``.
        note: why that implementation (worded without the device name, so it reads the same on every machine).
    """

    optimizer: torch.optim.AdamW
    implementation: str
    note: str


FUSED_NOTE = ("this torch has a fused AdamW kernel for the parameters' device: one kernel updates every "
              "parameter of a group per step, instead of one small kernel per parameter (for-loop) or "
              "per operation over lists of tensors (foreach)")


def build_adamw(
    model: nn.Module,
    lr: float,
    weight_decay: float,
    strategy: str = "by_type",
    exempt: Iterable[str] = EXEMPT_CATEGORIES,
    betas: tuple[float, float] = (0.9, 0.999),
) -> AdamWBuild:
    """AdamW over :func:`param_groups`, fused where this torch supports it for the parameters' device.

    Args:
        model, weight_decay, strategy, exempt: as for :func:`param_groups`.
        lr: learning rate, a finite number >= 0. betas: two numbers in [0, 1).

    Raises:
        TypeError / ValueError: bad ``lr`` or ``betas``, or any bad argument of :func:`param_groups`.
    """
    check_number("lr", lr, minimum=0.0)
    _check_betas(betas)
    groups = param_groups(model, weight_decay, strategy, exempt)
    reason = _why_fused_is_unavailable([p for group in groups for p in group["params"]])
    if not reason:
        try:
            return AdamWBuild(torch.optim.AdamW(groups, lr=lr, betas=betas, fused=True), "fused", FUSED_NOTE)
        except (RuntimeError, ValueError, TypeError) as err:
            reason = str(err)
    return AdamWBuild(torch.optim.AdamW(groups, lr=lr, betas=betas), "default", f"fused unavailable: {reason}")


def _check_betas(betas: Any) -> tuple[float, float]:
    """Two finite numbers in [0, 1): AdamW's moving-average coefficients (torch checks them only partly)."""
    check_type("betas", betas, (tuple, list), "a tuple of two numbers in [0, 1)")
    if len(betas) != 2:
        raise ValueError(f"betas must hold two numbers in [0, 1), but got {len(betas)}: {betas!r}")
    for index, beta in enumerate(betas):
        check_number(f"betas[{index}]", beta, minimum=0.0)
        if beta >= 1.0:
            raise ValueError(f"betas[{index}] must be in [0, 1), but got {beta}")
    return betas


def _why_fused_is_unavailable(parameters: list[torch.Tensor]) -> str:
    """Empty when torch's fused AdamW can take ``parameters``; else the reason (AdamW itself only checks at step)."""
    try:
        from torch.utils._foreach_utils import _get_fused_kernels_supported_devices

        supported = set(_get_fused_kernels_supported_devices())
    except ImportError:  # a torch without the helper: trust only CUDA
        supported = {"cuda"}
    for parameter in parameters:
        if not parameter.is_floating_point():
            return f"fused AdamW needs floating-point parameters, but one has dtype {parameter.dtype}"
        if parameter.device.type not in supported:
            return f"this torch has no fused AdamW for device {parameter.device.type!r} (only {sorted(supported)})"
    return ""
