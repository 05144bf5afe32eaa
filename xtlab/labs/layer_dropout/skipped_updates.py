"""Does a skipped block's weight change at the step it is skipped? Under AdamW it depends on how grads are zeroed.

PyTorch's optimizers skip every parameter whose ``.grad`` is ``None``: no moment update, no weight decay, no
step. ``optimizer.zero_grad()`` sets grads to ``None`` by default (``set_to_none=True``), so a block that layer
dropout skipped keeps its weights exactly. With ``zero_grad(set_to_none=False)`` the grad is a tensor of zeros
instead, and AdamW still moves the weight: its first moment still holds earlier gradients, and decoupled weight
decay shrinks it whatever the gradient.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from xtlab._checks import check_bool, check_int, check_number, check_probability
from xtlab.data import get_batch, load_corpus
from xtlab.device import resolve_device
from xtlab.labs.layer_dropout.experiments import BATCH_SIZE, SEQ_LEN, build_model, make_optimizer
from xtlab.threads import one_cpu_thread
from xtlab.training import lm_loss


@dataclass(frozen=True)
class SkippedBlockStep:
    """One (step, block) where layer dropout skipped the block.

    Attributes:
        step: the optimizer step. block: the block's module name.
        grad: what the block's parameters held when ``optimizer.step()`` ran: ``"none"`` (``.grad is None``),
            ``"zeros"`` (a tensor of zeros left by ``zero_grad(set_to_none=False)``), or ``"nonzero"`` (never
            expected: the skip would not have bypassed the block).
        max_change: the largest absolute change of any of the block's weights during that step.
    """

    step: int
    block: str
    grad: str
    max_change: float

    @property
    def moved(self) -> bool:
        return self.max_change > 0.0


@dataclass(frozen=True)
class SkippedUpdates:
    """Every skipped (step, block) of a short AdamW run, with how far the skipped block's weights moved."""

    set_to_none: bool
    weight_decay: float
    layer_dropout: float
    steps: int
    skipped: tuple[SkippedBlockStep, ...]
    max_change_running: float  # the largest change of a block that ran, for scale

    def count(self, grad: str) -> int:
        """Skipped block-steps whose grads were ``grad`` (``"none"`` or ``"zeros"``)."""
        return sum(item.grad == grad for item in self.skipped)

    def moved(self, grad: str) -> int:
        """Of those, how many changed at least one weight."""
        return sum(item.grad == grad and item.moved for item in self.skipped)

    def max_change(self, grad: str) -> float:
        """The largest weight change among skipped block-steps whose grads were ``grad`` (0.0 when none)."""
        return max((item.max_change for item in self.skipped if item.grad == grad), default=0.0)


def _grad_kind(parameters: list[torch.nn.Parameter]) -> str:
    if all(parameter.grad is None for parameter in parameters):
        return "none"
    if all(parameter.grad is not None and not parameter.grad.any() for parameter in parameters):
        return "zeros"
    return "nonzero"  # never for a skipped block: it would mean the skip did not bypass it


def skipped_block_updates(set_to_none: bool = True, weight_decay: float = 0.01, layer_dropout: float = 0.3,
                          depth: int = 2, steps: int = 30, seed: int = 0, device=None) -> SkippedUpdates:
    """Train the lab's tiny decoder with AdamW and measure how much each skipped block's weights moved.

    Args:
        set_to_none: how grads are cleared before each step: ``optimizer.zero_grad(set_to_none=...)``.
        weight_decay: AdamW's decoupled weight decay (PyTorch's default is 0.01).
        layer_dropout, depth, steps, seed: as in :func:`run_layer_dropout`.
    """
    check_bool("set_to_none", set_to_none)
    weight_decay = check_number("weight_decay", weight_decay, minimum=0.0)
    layer_dropout = check_probability("layer_dropout", layer_dropout)
    check_int("depth", depth, minimum=1)
    check_int("steps", steps, minimum=1)
    check_int("seed", seed, minimum=0)
    corpus = load_corpus()
    device = resolve_device(device)
    with one_cpu_thread():
        model = build_model(corpus.tokenizer.vocab_size, depth, layer_dropout, seed=seed).to(device)
        model.train()
        optimizer = make_optimizer(model, weight_decay)
        batches = torch.Generator().manual_seed(seed)
        blocks = {f"attn_layers.layers.{i}": list(block.parameters())
                  for i, block in enumerate(model.attn_layers.layers)}
        skipped, max_running = [], 0.0
        for step in range(steps):
            optimizer.zero_grad(set_to_none=set_to_none)
            loss = lm_loss(model, get_batch(corpus.train, BATCH_SIZE, SEQ_LEN, batches, device))
            skipped_now = set(model.skipped_blocks)
            loss.backward()
            before = {name: [p.detach().clone() for p in params] for name, params in blocks.items()}
            kinds = {name: _grad_kind(blocks[name]) for name in skipped_now}
            optimizer.step()
            for name, params in blocks.items():
                change = max(float((p.detach() - old).abs().max()) for p, old in zip(params, before[name], strict=True))
                if name in skipped_now:
                    skipped.append(SkippedBlockStep(step, name, kinds[name], change))
                else:
                    max_running = max(max_running, change)
    return SkippedUpdates(set_to_none, weight_decay, layer_dropout, steps, tuple(skipped), max_running)
