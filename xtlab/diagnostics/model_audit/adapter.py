"""The hook that adapts any model to the audit's instruments: a :class:`ModelAdapter`.

An adapter says, for one kind of model, how to make a batch, compute a loss, find the embedding/output pair,
pass XL memories and switch layer dropout. Every field but ``name``, ``make_batch`` and ``loss`` is optional:
a check whose hook is missing "could not run" (reason: missing capability). Write the functions at module level
(not lambdas, not in a notebook) and the adapter pickles, so the audit can send it to the 2-process DDP step as well.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from xtlab._checks import check_callable, check_optional, check_str
from xtlab.training import LossFn, check_loss_fn, compute_loss

Batch = tuple[Any, ...]


@dataclass(frozen=True)
class ModelAdapter:
    """How the audit drives one kind of model.

    Attributes:
        name: what kind of model this adapter is for, e.g. ``"x-transformers TransformerWrapper"``.
        make_batch: ``make_batch(model, generator) -> tuple``: one small batch on the model's device, drawn only
            from ``generator`` (a seeded ``torch.Generator``), never from global random state.
        loss: ``loss(model, batch) -> scalar tensor`` (a :data:`xtlab.training.LossFn`, the signature every xtlab
            loss function has), differentiable in every parameter a training step uses. It must only *call*
            ``model(...)`` (no attribute access), so it also works on the model wrapped in ``DistributedDataParallel``.
        forward: ``forward(model, batch) -> tensor``: the model's main output (logits). Optional; extra
            invariants (e.g. causality) use it.
        embedding, output: dotted attribute paths of the token embedding and the output projection (``None``:
            the model has no such pair: the tie check could not run).
        get_layer_dropout, set_layer_dropout: read and write the model's layer-dropout probability (``None``:
            the model has no layer dropout).
        xl_step: ``xl_step(model, tokens, mems) -> (output, new_mems)`` for Transformer-XL recurrence: ``tokens``
            a (batch, n) segment, ``mems`` ``None`` or the list ``new_mems`` of the previous segment (``None``:
            the model keeps no memories). The token batch is ``make_batch(...)[0]``.
    """

    name: str
    make_batch: Callable[[nn.Module, torch.Generator], Batch]
    loss: LossFn
    forward: Callable[[nn.Module, Batch], Tensor] | None = None
    embedding: str | None = None
    output: str | None = None
    get_layer_dropout: Callable[[nn.Module], float] | None = None
    set_layer_dropout: Callable[[nn.Module, float], None] | None = None
    xl_step: Callable[[nn.Module, Tensor, list[Tensor] | None], tuple[Tensor, list[Tensor]]] | None = None

    def __post_init__(self) -> None:
        check_str("name", self.name)
        check_callable("make_batch", self.make_batch)
        check_loss_fn("loss", self.loss)
        for field in ("forward", "get_layer_dropout", "set_layer_dropout", "xl_step"):
            check_optional(field, getattr(self, field), check_callable)
        for field in ("embedding", "output"):
            check_optional(field, getattr(self, field), check_str)
        if (self.embedding is None) != (self.output is None):
            raise ValueError(f"embedding and output must be given together (a pair), but got "
                             f"embedding={self.embedding!r}, output={self.output!r}")
        if (self.get_layer_dropout is None) != (self.set_layer_dropout is None):
            raise ValueError("get_layer_dropout and set_layer_dropout must be given together, but only one was")

    @property
    def hooks(self) -> tuple[Callable, ...]:
        """Every function the adapter gives (to tell the adapter's errors from the model's)."""
        return tuple(fn for fn in (self.make_batch, self.loss, self.forward, self.get_layer_dropout,
                                   self.set_layer_dropout, self.xl_step) if fn is not None)

    @property
    def has_layer_dropout(self) -> bool:
        return self.get_layer_dropout is not None

    @property
    def has_tie(self) -> bool:
        return self.embedding is not None

    @property
    def has_memories(self) -> bool:
        return self.xl_step is not None

    def batch(self, model: nn.Module, seed: int) -> Batch:
        """``make_batch`` with a generator seeded by ``seed``, checked to be a tuple."""
        batch = self.make_batch(model, torch.Generator().manual_seed(seed))
        if not isinstance(batch, tuple):
            raise TypeError(f"{self.name} adapter: make_batch must return a tuple of forward arguments, but "
                            f"returned {type(batch).__name__}")
        return batch

    def scalar_loss(self, model: nn.Module, batch: Batch) -> Tensor:
        """``loss(model, batch)``, checked to be a scalar tensor (itself a :data:`xtlab.training.LossFn`)."""
        return compute_loss(self.loss, model, batch, name=f"the {self.name} adapter's loss")
