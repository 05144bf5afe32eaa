"""The lab's decay rule, stated once: every exercise, checker, audit row and panel of lab 04 decides with it.

Weight decay multiplies a decayed parameter by ``1 - lr * weight_decay`` each step: it pulls the *stored* value
towards 0 (section 4 of the lab measures it). So a parameter is decayed exactly when a stored 0 is a harmless
default for it:

- a matrix weight (stored 0: a smaller linear map) and a gain stored as an offset from 1 (stored 0: gain 1,
  the identity; x-transformers' and xtlab's default for norms, ``unit_offset=True``) are **decayed**;
- a gain stored directly (stored 0: the signal switched off), an embedding table, memory tokens and attention
  memory key/values (stored 0: the learned data erased), a bias (an additive shift, not the size of a map) and any
  other vector the rule cannot name are **not decayed**.

Decided from the module that owns the parameter and how it is stored, never from the full name or ndim alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from xtlab._checks import check_module
from xtlab.diagnostics.optimizer_groups import DECAY, NO_DECAY

MEMORY_LEAVES = ("memory_tokens", "mem_k", "mem_v")

REASONS = {
    "linear map": "a linear map: decay keeps its weights small, the usual regulariser",
    "offset from identity": "stored as an offset from 1: decay pulls it to 1, the identity",
    "gain stored directly": "a gain stored directly: decay pulls it to 0, which switches its signal off",
    "learned data": "learned data (table rows, tokens, keys): decay erases what it stores",
    "additive shift": "a bias, an additive shift: it does not set a map's size, so decaying it regularises nothing",
    "unnamed vector": "a vector the rule cannot name: left undecayed, since a stored 0 may switch it off",
}

# kind -> (group, reason key): the rule as a table
KINDS = {
    "matrix weight": (DECAY, "linear map"),
    "gain stored as offset from 1": (DECAY, "offset from identity"),
    "gain stored directly": (NO_DECAY, "gain stored directly"),
    "embedding": (NO_DECAY, "learned data"),
    "memory tokens": (NO_DECAY, "learned data"),
    "memory key/values": (NO_DECAY, "learned data"),
    "bias": (NO_DECAY, "additive shift"),
    "other vector": (NO_DECAY, "unnamed vector"),
}

DECAY_RULE = (
    "The lab's decay rule: weight decay pulls the stored value towards 0, so decay a parameter exactly when a "
    "stored 0 is harmless.\n"
    + "\n".join(f"  {kind:34s} -> {group:8s} ({REASONS[reason]})" for kind, (group, reason) in KINDS.items())
    + "\nDecided from the module that owns the parameter and its attribute name, not from the full name: "
    "memory_tokens, mem_k, mem_v and any nn.Embedding's table are learned data; bias or *_bias (ndim <= 1) a bias; "
    "the parameters of a norm (a class whose name contains 'Norm'), and the vectors of a module with "
    "unit_offset=True, are gains, stored as offsets exactly when the module's unit_offset is True; otherwise "
    "ndim >= 2 is a matrix weight."
)


def is_norm(module: nn.Module) -> bool:
    """A normalisation module: torch's LayerNorm/GroupNorm or any class whose name contains ``Norm``."""
    return isinstance(module, (nn.LayerNorm, nn.GroupNorm)) or "Norm" in type(module).__name__


def parameter_kind(leaf: str, parameter: torch.Tensor, owner: nn.Module) -> str:
    """The rule's kind (a key of ``KINDS``) for the parameter stored as ``owner.<leaf>``."""
    if leaf == "memory_tokens":
        return "memory tokens"
    if leaf in ("mem_k", "mem_v"):
        return "memory key/values"
    if isinstance(owner, nn.Embedding):
        return "embedding"
    if (leaf == "bias" or leaf.endswith("_bias")) and parameter.ndim <= 1:  # nn.MultiheadAttention.in_proj_bias
        return "bias"
    offset = bool(getattr(owner, "unit_offset", False))
    if is_norm(owner) or (offset and parameter.ndim <= 1):  # a norm's gain, or a LayerScale-like gain
        return "gain stored as offset from 1" if offset else "gain stored directly"
    return "matrix weight" if parameter.ndim >= 2 else "other vector"


def decays(leaf: str, parameter: torch.Tensor, owner: nn.Module) -> bool:
    """True when the rule puts the parameter in the decayed group."""
    return KINDS[parameter_kind(leaf, parameter, owner)][0] == DECAY


@dataclass(frozen=True)
class RuleRow:
    """One trainable parameter under the rule: its name (a tied one: its first), kind, group and why."""

    name: str
    shape: tuple[int, ...]
    kind: str
    group: str
    reason: str
    owner: str

    @property
    def category(self) -> str:
        return self.kind


def rule_rows(model: nn.Module) -> list[RuleRow]:
    """Every trainable parameter of ``model`` once (a tied Parameter under its first name), in
    ``named_parameters()`` order, with the rule's group; frozen parameters are left out."""
    check_module("model", model)
    modules = dict(model.named_modules())
    rows = []
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        module_name, _, leaf = name.rpartition(".")
        owner = modules[module_name]
        kind = parameter_kind(leaf, parameter, owner)
        group, reason = KINDS[kind]
        rows.append(RuleRow(name, tuple(parameter.shape), kind, group, REASONS[reason], type(owner).__name__))
    return rows
