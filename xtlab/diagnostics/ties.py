"""Tie inspector: which parameters are truly tied (one Parameter object), which are half-tied (distinct
Parameters over one storage: an optimizer updates that memory once per Parameter), and which state_dict keys
alias each other."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import torch
import torch.nn as nn

from xtlab._checks import check_module, check_str, check_tensor


class TieStatus(str, Enum):
    """How two named tensors of a model relate."""

    TIED = "tied"  # the same Parameter object: one tensor, updated once
    HALF_TIED = "half-tied"  # distinct Parameter objects over the same memory: updated once per object
    UNTIED = "untied"  # separate memory


@dataclass(frozen=True)
class TieReport:
    """Every tie in a model.

    Attributes:
        tied: groups of parameter names that are the same Parameter object.
        half_tied: groups of names whose Parameters are distinct objects sharing storage (each inner tuple
            lists every name over that storage, including names of the same object).
        state_dict_aliases: groups of state_dict keys whose tensors share storage.
    """

    tied: tuple[tuple[str, ...], ...]
    half_tied: tuple[tuple[str, ...], ...]
    state_dict_aliases: tuple[tuple[str, ...], ...]

    def status(self, first: str, second: str) -> TieStatus:
        """How the parameters named ``first`` and ``second`` relate (names as ``named_parameters`` spells them)."""
        if any(first in group and second in group for group in self.tied):
            return TieStatus.TIED
        if any(first in group and second in group for group in self.half_tied):
            return TieStatus.HALF_TIED
        return TieStatus.UNTIED


def _storage_key(tensor: torch.Tensor) -> tuple[str, int] | None:
    # meta tensors (and tensors without storage) hold no memory, so they can share none
    if tensor.device.type == "meta":
        return None
    try:
        return (str(tensor.device), tensor.untyped_storage().data_ptr())
    except (RuntimeError, NotImplementedError):
        return None


def _groups_by_storage(named_tensors: list[tuple[str, torch.Tensor]]) -> dict[tuple[str, int], list[str]]:
    groups: dict[tuple[str, int], list[str]] = {}
    for name, tensor in named_tensors:
        key = _storage_key(tensor)
        if key is not None and key[1] != 0:
            groups.setdefault(key, []).append(name)
    return groups


def inspect_ties(model: nn.Module) -> TieReport:
    """Find every true tie, half-tie and aliased state_dict key in ``model``.

    Args:
        model: any ``nn.Module``.

    Returns:
        A :class:`TieReport`; ``report.status("token_emb.weight", "to_logits.weight")`` answers
        "is the embedding tied to the output, truly?".
    """
    check_module("model", model)
    every_name = list(model.named_parameters(remove_duplicate=False))
    by_object: dict[int, list[str]] = {}
    for name, parameter in every_name:
        by_object.setdefault(id(parameter), []).append(name)
    tied = tuple(tuple(names) for names in by_object.values() if len(names) > 1)

    half_tied = []
    parameter_of = dict(every_name)
    for names in _groups_by_storage(every_name).values():
        if len({id(parameter_of[name]) for name in names}) > 1:
            half_tied.append(tuple(names))

    state_dict = model.state_dict(keep_vars=True)
    aliases = tuple(tuple(keys) for keys in _groups_by_storage(list(state_dict.items())).values() if len(keys) > 1)
    return TieReport(tied=tied, half_tied=tuple(half_tied), state_dict_aliases=aliases)


def tie_status(model: nn.Module, first: str, second: str) -> TieStatus:
    """How the parameters ``first`` and ``second`` of ``model`` relate: tied, half-tied or untied.

    Raises:
        TypeError: ``model`` is not a module.
        ValueError: a name is not one of the model's parameters (the message lists close names).
    """
    check_module("model", model)
    check_str("first", first)
    check_str("second", second)
    names = {name for name, _ in model.named_parameters(remove_duplicate=False)}
    for argument, name in (("first", first), ("second", second)):
        if name not in names:
            close = sorted(candidate for candidate in names if name.split(".")[-1] in candidate)[:5]
            raise ValueError(f"{argument}={name!r} is not a parameter of this model; parameters like it: {close}")
    return inspect_ties(model).status(first, second)


def tensor_tie_status(first: torch.Tensor, second: torch.Tensor) -> TieStatus:
    """How two tensors relate: the same object (tied), distinct objects over one storage (half-tied), or untied."""
    check_tensor("first", first)
    check_tensor("second", second)
    if first is second:
        return TieStatus.TIED
    key = _storage_key(first)
    return TieStatus.HALF_TIED if key is not None and key == _storage_key(second) else TieStatus.UNTIED


def _submodule(model: nn.Module, path: str, argument: str):
    check_str(argument, path)
    target = model
    for part in path.split("."):
        if not hasattr(target, part):
            children = sorted(name for name, _ in model.named_children())
            raise ValueError(f"{argument}={path!r} is not an attribute of this model; its children are {children}")
        target = getattr(target, part)
    return target


def _embedding_weight(module, path: str) -> torch.Tensor:
    for candidate in (getattr(module, "weight", None), getattr(getattr(module, "emb", None), "weight", None)):
        if isinstance(candidate, torch.Tensor):
            return candidate
    raise ValueError(f"embedding={path!r} has no .weight (nor .emb.weight, as x-transformers nests it)")


def embedding_output_tie(model: nn.Module, embedding: str = "token_emb", output: str = "to_logits") -> TieStatus:
    """Is this model's output projection tied to its token embedding, truly?

    Works on xtlab models (``nn.Linear``, ``TiedLinear``, a naive assignment) and on x-transformers models,
    whose tie is a plain function (``t @ token_emb.emb.weight.t()``): an output without a weight is probed
    with autograd, and counts as tied only if its result depends on *this* model's embedding Parameter
    (a deep copy whose function still reads the original model's embedding is untied).

    Args:
        model: any module. embedding, output: dotted attribute paths of the two modules.
    """
    check_module("model", model)
    emb_weight = _embedding_weight(_submodule(model, embedding, "embedding"), embedding)
    out = _submodule(model, output, "output")
    if out is None:
        raise ValueError(f"output={output!r} is None: this model has no output projection to tie")
    out_weight = getattr(out, "weight", None)
    if isinstance(out_weight, torch.Tensor):
        return tensor_tie_status(emb_weight, out_weight)
    if not callable(out):
        raise TypeError(f"output={output!r} must be a module or function, but got {type(out).__name__}")
    probe = torch.eye(emb_weight.shape[1], dtype=emb_weight.dtype, device=emb_weight.device)
    with torch.enable_grad():
        result = out(probe)
        if not (isinstance(result, torch.Tensor) and result.requires_grad):
            return TieStatus.UNTIED
        (grad,) = torch.autograd.grad(result.sum(), emb_weight, allow_unused=True)
    return TieStatus.TIED if grad is not None else TieStatus.UNTIED
