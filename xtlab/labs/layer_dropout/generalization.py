"""Lab 01, "why it matters": a few seconds of training with and without layer dropout, train vs validation loss.

To see a generalization gap within seconds the model trains on a small slice of the corpus (it can memorise
it), and both losses are measured in eval mode on fixed batches, so p = 0 and p > 0 are compared fairly.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from xtlab.data import get_batch, load_corpus
from xtlab.device import resolve_device
from xtlab.labs.layer_dropout.experiments import BATCH_SIZE, LEARNING_RATE, SEQ_LEN, build_model
from xtlab.threads import one_cpu_thread
from xtlab.training import evaluate_loss, train


@dataclass(frozen=True)
class LossCurve:
    """Train and validation loss (eval mode) of one run, measured at ``eval_steps``."""

    layer_dropout: float
    eval_steps: tuple[int, ...]
    train_losses: tuple[float, ...]
    val_losses: tuple[float, ...]

    @property
    def final_gap(self) -> float:
        """Validation minus train loss at the end: how much the model memorised its training slice."""
        return self.val_losses[-1] - self.train_losses[-1]


@dataclass(frozen=True)
class DropoutComparison:
    """One :class:`LossCurve` per layer-dropout probability, same data, model init and batches."""

    depth: int
    steps: int
    train_tokens: int
    curves: tuple[LossCurve, ...]

    def curve(self, layer_dropout: float) -> LossCurve:
        for curve in self.curves:
            if curve.layer_dropout == layer_dropout:
                return curve
        raise ValueError(f"no run with layer_dropout={layer_dropout}; runs: {[c.layer_dropout for c in self.curves]}")


def _fixed_batches(data: torch.Tensor, count: int, seed: int, device):
    generator = torch.Generator().manual_seed(seed)
    batches = [get_batch(data, BATCH_SIZE, SEQ_LEN, generator, device) for _ in range(count)]
    return lambda index: batches[index]


def compare_layer_dropout(layer_dropouts: tuple[float, ...] = (0.0, 0.3), steps: int = 100, depth: int = 4,
                          train_tokens: int = 1000, eval_every: int = 20, eval_batches: int = 4, seed: int = 0,
                          device=None) -> DropoutComparison:
    """Train the tiny decoder once per ``p`` on the first ``train_tokens`` tokens of the corpus.

    Args:
        layer_dropouts: the probabilities to compare, each in [0, 1).
        steps: optimizer steps per run (a multiple of ``eval_every``). depth: layers.
        train_tokens: size of the training slice (small, so memorising it shows as a gap within seconds).
        eval_every: measure both losses every this many steps. eval_batches: batches per measurement.
        seed: same model initialisation and batches for every ``p``.
    """
    if not layer_dropouts or any(not 0.0 <= p < 1.0 for p in layer_dropouts):
        raise ValueError(f"layer_dropouts must be a non-empty tuple of numbers in [0, 1), but got {layer_dropouts!r}")
    for name, value in (("steps", steps), ("depth", depth), ("eval_every", eval_every),
                        ("eval_batches", eval_batches), ("train_tokens", train_tokens)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, but got {value!r}")
    if steps % eval_every:
        raise ValueError(f"steps={steps} must be a multiple of eval_every={eval_every}")
    device = resolve_device(device)
    corpus = load_corpus()
    train_slice = corpus.train[:train_tokens]
    if train_slice.numel() <= SEQ_LEN:
        raise ValueError(f"train_tokens={train_tokens} must exceed the sequence length {SEQ_LEN}")
    train_eval = _fixed_batches(train_slice, eval_batches, seed + 1, device)
    val_eval = _fixed_batches(corpus.val, eval_batches, seed + 2, device)
    with one_cpu_thread():
        curves = tuple(_train_curve(float(p), corpus.tokenizer.vocab_size, train_slice, train_eval, val_eval, steps,
                                    depth, eval_every, eval_batches, seed, device) for p in layer_dropouts)
    return DropoutComparison(depth, steps, train_tokens, curves)


def _train_curve(p, vocab_size, train_slice, train_eval, val_eval, steps, depth, eval_every, eval_batches, seed,
                 device) -> LossCurve:
    model = build_model(vocab_size, depth, p, seed=seed).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE)
    generator = torch.Generator().manual_seed(seed)
    eval_steps, train_losses, val_losses = [], [], []
    for done in range(eval_every, steps + 1, eval_every):
        train(model, lambda step: get_batch(train_slice, BATCH_SIZE, SEQ_LEN, generator), eval_every,
              optimizer=optimizer)
        eval_steps.append(done)
        train_losses.append(evaluate_loss(model, train_eval, eval_batches))
        val_losses.append(evaluate_loss(model, val_eval, eval_batches))
    return LossCurve(p, tuple(eval_steps), tuple(train_losses), tuple(val_losses))
