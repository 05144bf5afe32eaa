"""Unused parameters: the ones a forward/backward pass never reaches, which break DDP without
``find_unused_parameters=True``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch.nn as nn

from xtlab._checks import check_module
from xtlab.training import LossFn, check_loss_fn, compute_loss


@dataclass(frozen=True)
class UnusedParameter:
    """A trainable parameter that received no gradient.

    Attributes:
        name: qualified name, as ``model.named_parameters()`` gives it.
        shape: the parameter's shape.
        numel: number of elements (what DDP would have to reduce for nothing).
    """

    name: str
    shape: tuple[int, ...]
    numel: int


def find_unused_parameters(model: nn.Module, loss_fn: LossFn, batch: Any) -> list[UnusedParameter]:
    """Run ``loss_fn(model, batch).backward()`` once and list the trainable parameters left without a gradient.

    The model's existing ``.grad`` values are put back afterwards, so calling this mid-training changes nothing.
    Frozen parameters (``requires_grad=False``) are never listed: DDP ignores them too.

    Args:
        model: any ``nn.Module``.
        loss_fn: a :data:`xtlab.training.LossFn`: ``loss_fn(model, batch)`` returns a scalar loss tensor that
            requires grad.
        batch: what ``loss_fn`` feeds the model, e.g. ``(src, tgt)``; passed as it is (not moved to a device).

    Returns:
        One :class:`UnusedParameter` per parameter with no gradient, in ``named_parameters`` order.

    Raises:
        TypeError: ``model`` is not a module, ``loss_fn`` is not callable as ``loss_fn(model, batch)`` or returns
            no tensor.
        ValueError: the loss is not a scalar, or does not require grad.
    """
    check_module("model", model)
    check_loss_fn("loss_fn", loss_fn)
    named = [(name, parameter) for name, parameter in model.named_parameters() if parameter.requires_grad]
    saved_grads = [parameter.grad for _, parameter in named]
    try:
        for _, parameter in named:
            parameter.grad = None
        loss = compute_loss(loss_fn, model, batch)
        if not loss.requires_grad:
            raise ValueError("loss_fn returned a loss that does not require grad (was it computed under no_grad?)")
        loss.backward()
        return [
            UnusedParameter(name, tuple(parameter.shape), parameter.numel())
            for name, parameter in named
            if parameter.grad is None
        ]
    finally:
        for (_, parameter), grad in zip(named, saved_grads, strict=True):
            parameter.grad = grad
