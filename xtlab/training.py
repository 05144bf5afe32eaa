"""A tiny training loop the labs share, with a hook that sees gradients before the optimizer uses them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from xtlab.device import resolve_device

Batch = tuple[torch.Tensor, torch.Tensor]
BatchFn = Callable[[int], Batch]
LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]
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


def lm_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Next-token cross-entropy of ``model(x)`` against ``y``.

    Shape:
        x, y: (b, n) token ids; ``model(x)``: (b, n, vocab) logits. Returns a scalar.
    """
    logits = model(x)
    if not isinstance(logits, torch.Tensor) or logits.dim() != 3 or logits.shape[:2] != y.shape:
        shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ValueError(f"model(x) must return (b, n, vocab) logits matching y {tuple(y.shape)}, but returned {shape}")
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


def _check_model_and_fns(model: nn.Module, batch_fn: BatchFn, loss_fn: LossFn | None) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, but got {type(model).__name__}")
    if not callable(batch_fn):
        raise TypeError(f"batch_fn must be callable as batch_fn(step) -> (x, y), but got {batch_fn!r}")
    if loss_fn is not None and not callable(loss_fn):
        raise TypeError(f"loss_fn must be None or callable as loss_fn(model, x, y), but got {loss_fn!r}")


def _check_count(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, but got {value!r}")


def _model_device(model: nn.Module) -> torch.device:
    first = next(model.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


def _fetch_batch(batch_fn: BatchFn, step: int, device: torch.device) -> Batch:
    batch = batch_fn(step)
    if not (isinstance(batch, (tuple, list)) and len(batch) == 2 and all(isinstance(t, torch.Tensor) for t in batch)):
        raise TypeError(f"batch_fn({step}) must return a pair of tensors (x, y), but returned {type(batch).__name__}")
    x, y = batch
    return x.to(device), y.to(device)


def _scalar_loss(loss: object) -> torch.Tensor:
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        shape = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
        raise ValueError(f"loss_fn must return a scalar tensor, but returned {shape}")
    return loss.reshape(())


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

    Each step: ``x, y = batch_fn(step)``; ``loss = loss_fn(model, x, y)``; ``loss.backward()``;
    ``callback(step, loss, model)``; ``optimizer.step()``; ``optimizer.zero_grad()``.
    The callback runs after backward and before the optimizer step, so ``p.grad`` holds this step's
    gradients (a gradient recorder reads them there); gradients are zeroed only after it returns.

    Args:
        model: any module; with the default loss it maps (b, n) token ids to (b, n, vocab) logits.
        batch_fn: ``batch_fn(step) -> (x, y)``; the tensors are moved to the model's device.
        steps: number of optimizer steps (>= 1).
        optimizer: defaults to ``AdamW(model.parameters(), lr=lr)``; when given, ``lr`` is ignored.
        lr: learning rate of the default optimizer (> 0).
        loss_fn: ``loss_fn(model, x, y) -> scalar``; defaults to ``lm_loss`` (use ``lambda m, s, t: m(s, t)``
            for an ``XTransformer``, whose forward returns its loss).
        callback: ``callback(step, loss, model)`` with the loss as a float; its return value is ignored.
        device: move the model there first; ``None`` keeps it where it is.

    Returns:
        TrainHistory with one loss per step. The model's train/eval mode is restored afterwards.

    Raises:
        TypeError: ``model`` is not a module, or ``batch_fn``/``loss_fn``/``callback`` not callable.
        ValueError: ``steps`` < 1 or ``lr`` <= 0.
    """
    _check_model_and_fns(model, batch_fn, loss_fn)
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
    loss_fn = loss_fn or lm_loss
    optimizer = optimizer or torch.optim.AdamW(model.parameters(), lr=lr)

    was_training = model.training
    model.train()
    history = TrainHistory()
    try:
        optimizer.zero_grad(set_to_none=True)
        for step in range(steps):
            x, y = _fetch_batch(batch_fn, step, target_device)
            loss = _scalar_loss(loss_fn(model, x, y))
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
    """Mean loss over ``batch_fn(0) .. batch_fn(batches - 1)`` in eval mode, without gradients.

    The model's previous train/eval mode is restored afterwards.

    Raises:
        TypeError: ``model`` is not a module or ``batch_fn``/``loss_fn`` not callable.
        ValueError: ``batches`` < 1.
    """
    _check_model_and_fns(model, batch_fn, loss_fn)
    _check_count("batches", batches)
    loss_fn = loss_fn or lm_loss
    target_device = _model_device(model)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            total = 0.0
            for index in range(batches):
                x, y = _fetch_batch(batch_fn, index, target_device)
                total += _scalar_loss(loss_fn(model, x, y)).item()
    finally:
        model.train(was_training)
    return total / batches
