"""How DDP's reducer decides that a parameter is ready, shown on one process.

The reducer puts a hook on every trainable parameter's gradient accumulator. When the backward pass accumulates
that parameter's gradient, the hook fires and the parameter is *ready*; a bucket of parameters is all-reduced once
all of them are ready, and the iteration is finished once every bucket has been reduced. A parameter the forward
pass never touched never fires its hook. ``ready_parameters`` attaches the same kind of hook
(``register_post_accumulate_grad_hook``) and reports which parameters became ready, in order, and which never did.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from xtlab._checks import check_module
from xtlab.training import LossFn, check_loss_fn, compute_loss


@dataclass(frozen=True)
class Readiness:
    """Which parameters a backward pass made ready.

    Attributes:
        ready: names in the order their gradient was accumulated (the order DDP's hooks fire).
        never_ready: trainable parameters whose hook never fired: the reducer would wait for them forever.
        frozen: parameters with ``requires_grad=False``: DDP puts no hook on them and never waits for them.
    """

    ready: tuple[str, ...]
    never_ready: tuple[str, ...]
    frozen: tuple[str, ...]


def ready_parameters(model: nn.Module, loss_fn: LossFn, batch: Any) -> Readiness:
    """Run ``loss_fn(model, batch).backward()`` once with a post-accumulate hook on every trainable parameter.

    ``loss_fn`` is a :data:`xtlab.training.LossFn`; ``batch`` is passed to it as it is. The model's ``.grad`` values
    are put back and the hooks removed afterwards.

    Raises:
        TypeError: ``model`` is not a module or ``loss_fn`` not callable as ``loss_fn(model, batch)``; ``loss_fn``
            returns no tensor.
        ValueError: the loss is not a scalar.
    """
    check_module("model", model)
    check_loss_fn("loss_fn", loss_fn)
    named = list(model.named_parameters())
    trainable = [(name, p) for name, p in named if p.requires_grad]
    saved = [p.grad for _, p in trainable]
    fired: list[str] = []
    handles = [p.register_post_accumulate_grad_hook(lambda _p, name=name: fired.append(name))
               for name, p in trainable]
    try:
        for _, p in trainable:
            p.grad = None
        compute_loss(loss_fn, model, batch).backward()
    finally:
        for handle in handles:
            handle.remove()
        for (_, p), grad in zip(trainable, saved, strict=True):
            p.grad = grad
    return Readiness(tuple(fired), tuple(name for name, _ in trainable if name not in set(fired)),
                     tuple(name for name, p in named if not p.requires_grad))
