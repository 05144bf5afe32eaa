"""A tiny training loop the labs share, with a hook that sees gradients before the optimizer uses them."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from xtlab._checks import check_module, shown
from xtlab.device import resolve_device

BatchFn = Callable[[int], Any]
LossFn = Callable[[nn.Module, Any], torch.Tensor]
"""The one signature of every loss function in xtlab, ``loss_fn(model, batch) -> scalar tensor``, taken by
``train``, ``evaluate_loss``, ``find_unused_parameters``, ``ready_parameters`` and the audit adapters' ``loss``.
``batch`` is whatever the data gives, e.g. the tuple ``(x, y)`` of :func:`lm_loss`."""
Callback = Callable[[int, float, nn.Module], object]


@dataclass
class TrainHistory:
    """What ``train`` recorded.

    Attributes:
        losses: the training loss of each step, in order.
    """

    losses: list[float] = field(default_factory=list)

    @property
    def final_loss(self) -> float:
        """The last step's loss."""
        if not self.losses:
            raise ValueError("the history is empty: no step has run")
        return self.losses[-1]

    def __len__(self) -> int:
        return len(self.losses)


def check_loss_fn(name: str, value: Any) -> LossFn:
    """``value`` when it can be called as ``value(model, batch)`` (see :data:`LossFn`).

    A signature that cannot be inspected (some builtins) is trusted.

    Raises:
        TypeError: not callable, or its signature does not take ``(model, batch)`` (e.g. the old ``(model)`` or
            ``(model, x, y)``).
    """
    if not callable(value):
        raise TypeError(f"{name} must be callable as {name}(model, batch) -> scalar tensor, but got {shown(value)}")
    try:
        signature = inspect.signature(value)
    except (TypeError, ValueError):
        return value
    try:
        signature.bind(None, None)
    except TypeError:
        label = getattr(value, "__qualname__", type(value).__name__)
        raise TypeError(f"{name} must have the signature {name}(model, batch) -> scalar tensor (the batch is one "
                        f"argument, e.g. the tuple (x, y)), but {label} has the signature {signature}") from None
    return value


def compute_loss(loss_fn: LossFn, model: nn.Module, batch: Any, name: str = "loss_fn") -> torch.Tensor:
    """``loss_fn(model, batch)``, checked to be a one-element tensor and returned with shape ``()``.

    Raises:
        TypeError: it returned no tensor. ValueError: it returned a tensor of more than one element.
    """
    loss = loss_fn(model, batch)
    if not isinstance(loss, torch.Tensor):
        raise TypeError(f"{name} must return a scalar tensor, but returned {shown(loss)}")
    if loss.numel() != 1:
        raise ValueError(f"{name} must return a scalar tensor, but returned a tensor of shape {tuple(loss.shape)}")
    return loss.reshape(())


def lm_loss(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Next-token cross-entropy of ``model(x)`` against ``y``, with ``x, y = batch``: the default :data:`LossFn`.

    Shape:
        x, y: (b, n) token ids; ``model(x)``: (b, n, vocab) logits. Returns a scalar.

    Raises:
        TypeError: ``batch`` is not a pair of tensors. ValueError: ``model(x)`` gives no matching logits.
    """
    if not (isinstance(batch, (tuple, list)) and len(batch) == 2 and all(isinstance(t, torch.Tensor) for t in batch)):
        raise TypeError(f"lm_loss needs batch = (x, y), a pair of token-id tensors, but got {shown(batch)}")
    x, y = batch
    logits = model(x)
    if not isinstance(logits, torch.Tensor) or logits.dim() != 3 or logits.shape[:2] != y.shape:
        shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ValueError(f"model(x) must return (b, n, vocab) logits matching y {tuple(y.shape)}, but returned {shape}")
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


def _check_model_and_fns(model: nn.Module, batch_fn: BatchFn, loss_fn: LossFn | None) -> LossFn:
    """The loss function to use (``lm_loss`` for ``None``), after checking all three."""
    check_module("model", model)
    if not callable(batch_fn):
        raise TypeError(f"batch_fn must be callable as batch_fn(step) -> batch, but got {batch_fn!r}")
    return lm_loss if loss_fn is None else check_loss_fn("loss_fn", loss_fn)


def _check_count(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, but got {value!r}")


def _model_device(model: nn.Module) -> torch.device:
    first = next(model.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


def _to_device(batch: Any, device: torch.device) -> Any:
    """``batch`` with every tensor in it (alone, or inside tuples, lists and dicts) moved to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # a named tuple
        return type(batch)(*(_to_device(item, device) for item in batch))
    if isinstance(batch, (tuple, list)):
        return type(batch)(_to_device(item, device) for item in batch)
    if isinstance(batch, dict):
        return {key: _to_device(value, device) for key, value in batch.items()}
    return batch


def train(
    model: nn.Module,
    batch_fn: BatchFn,
    steps: int,
    *,
    optimizer: torch.optim.Optimizer | None = None,
    lr: float = 3e-3,
    loss_fn: LossFn | None = None,
    callback: Callback | None = None,
    device: str | torch.device | None = None,
) -> TrainHistory:
    """Train ``model`` for ``steps`` optimizer steps and record each step's loss.

    Each step: ``batch = batch_fn(step)``; ``loss = loss_fn(model, batch)``; ``loss.backward()``;
    ``callback(step, loss, model)``; ``optimizer.step()``; ``optimizer.zero_grad()``.
    The callback runs after backward and before the optimizer step, so ``p.grad`` holds this step's
    gradients (a gradient recorder reads them there); gradients are zeroed only after it returns.

    Args:
        model: any module; with the default loss it maps (b, n) token ids to (b, n, vocab) logits.
        batch_fn: ``batch_fn(step) -> batch``, e.g. ``(x, y)``; the tensors in it (alone, or in tuples, lists and
            dicts) are moved to the model's device.
        steps: number of optimizer steps (>= 1).
        optimizer: defaults to ``AdamW(model.parameters(), lr=lr)``; when given, ``lr`` is ignored.
        lr: learning rate of the default optimizer (> 0).
        loss_fn: a :data:`LossFn`, ``loss_fn(model, batch) -> scalar tensor``; defaults to ``lm_loss`` (use
            ``lambda m, batch: m(*batch)`` for an ``XTransformer`` fed ``(src, tgt)``: its forward returns its loss).
        callback: ``callback(step, loss, model)`` with the loss as a float; its return value is ignored.
        device: move the model there first; ``None`` keeps it where it is.

    Returns:
        TrainHistory with one loss per step. The model's train/eval mode is restored afterwards.

    Raises:
        TypeError: ``model`` is not a module, ``batch_fn``/``callback`` not callable, ``loss_fn`` not callable as
            ``loss_fn(model, batch)``, or it returns no tensor.
        ValueError: ``steps`` < 1, ``lr`` <= 0, or ``loss_fn`` returns more than one number.
    """
    loss_fn = _check_model_and_fns(model, batch_fn, loss_fn)
    _check_count("steps", steps)
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not lr > 0:
        raise ValueError(f"lr must be a number > 0, but got {lr!r}")
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be None or callable as callback(step, loss, model), but got {callback!r}")
    if optimizer is not None and not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be None or a torch.optim.Optimizer, but got {type(optimizer).__name__}")
    if device is not None:
        model.to(resolve_device(device))
    target_device = _model_device(model)
    optimizer = optimizer or torch.optim.AdamW(model.parameters(), lr=lr)

    was_training = model.training
    model.train()
    history = TrainHistory()
    try:
        optimizer.zero_grad(set_to_none=True)
        for step in range(steps):
            loss = compute_loss(loss_fn, model, _to_device(batch_fn(step), target_device))
            loss.backward()
            loss_value = loss.item()
            history.losses.append(loss_value)
            if callback is not None:
                callback(step, loss_value, model)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
    finally:
        model.train(was_training)
    return history


def evaluate_loss(model: nn.Module, batch_fn: BatchFn, batches: int, loss_fn: LossFn | None = None) -> float:
    """Mean of ``loss_fn(model, batch_fn(i))`` over ``i = 0 .. batches - 1`` in eval mode, without gradients.

    ``loss_fn`` is a :data:`LossFn` (default ``lm_loss``), as in :func:`train`. The model's previous train/eval mode
    is restored afterwards.

    Raises:
        TypeError: ``model`` is not a module, ``batch_fn`` not callable, or ``loss_fn`` not callable as
            ``loss_fn(model, batch)``.
        ValueError: ``batches`` < 1.
    """
    loss_fn = _check_model_and_fns(model, batch_fn, loss_fn)
    _check_count("batches", batches)
    target_device = _model_device(model)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            total = 0.0
            for index in range(batches):
                total += compute_loss(loss_fn, model, _to_device(batch_fn(index), target_device)).item()
    finally:
        model.train(was_training)
    return total / batches
