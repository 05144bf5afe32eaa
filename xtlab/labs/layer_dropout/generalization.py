"""Lab 01, "does it help?": training with and without layer dropout, train vs validation loss, over seeds.

To see a generalization gap within seconds the model trains on a small slice of the corpus (it can memorise
it), and both losses are measured in eval mode on fixed batches, so p = 0 and p > 0 are compared fairly.
One seed decides nothing: :func:`compare_over_seeds` repeats the comparison and keeps every seed's curve, so
the spread between seeds and the paired (same seed) differences can be shown next to each other.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

import torch

from xtlab._checks import check_probability
from xtlab.data import get_batch, load_corpus
from xtlab.device import resolve_device
from xtlab.labs.layer_dropout.experiments import BATCH_SIZE, SEQ_LEN, build_model, make_optimizer
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
    if not isinstance(layer_dropouts, tuple) or not layer_dropouts:
        raise ValueError(f"layer_dropouts must be a non-empty tuple of numbers in [0, 1), but got {layer_dropouts!r}")
    for index, p in enumerate(layer_dropouts):
        check_probability(f"layer_dropouts[{index}]", p)
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
    optimizer = make_optimizer(model)
    generator = torch.Generator().manual_seed(seed)
    eval_steps, train_losses, val_losses = [], [], []
    for done in range(eval_every, steps + 1, eval_every):
        train(model, lambda step: get_batch(train_slice, BATCH_SIZE, SEQ_LEN, generator), eval_every,
              optimizer=optimizer)
        eval_steps.append(done)
        train_losses.append(evaluate_loss(model, train_eval, eval_batches))
        val_losses.append(evaluate_loss(model, val_eval, eval_batches))
    return LossCurve(p, tuple(eval_steps), tuple(train_losses), tuple(val_losses))


@dataclass(frozen=True)
class Spread:
    """Mean, sample standard deviation, min and max of a few numbers (one per seed)."""

    values: tuple[float, ...]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values)

    @property
    def std(self) -> float:
        return statistics.stdev(self.values) if len(self.values) > 1 else math.nan

    @property
    def low(self) -> float:
        return min(self.values)

    @property
    def high(self) -> float:
        return max(self.values)

    def __str__(self) -> str:
        return f"{self.mean:.3f} ± {self.std:.3f} (min {self.low:.3f}, max {self.high:.3f})"


@dataclass(frozen=True)
class SeedComparison:
    """:func:`compare_layer_dropout` once per seed: the same settings, different model inits, batches and skips.

    Attributes:
        layer_dropouts: the probabilities compared (the first is the baseline, usually 0).
        seeds: the seeds, one :class:`DropoutComparison` each, in ``runs``.
    """

    layer_dropouts: tuple[float, ...]
    seeds: tuple[int, ...]
    runs: tuple[DropoutComparison, ...]

    @property
    def eval_steps(self) -> tuple[int, ...]:
        return self.runs[0].curves[0].eval_steps

    @property
    def baseline(self) -> float:
        return self.layer_dropouts[0]

    def curves(self, layer_dropout: float) -> tuple[LossCurve, ...]:
        """One curve per seed for ``layer_dropout``."""
        return tuple(run.curve(layer_dropout) for run in self.runs)

    def _index(self, step: int) -> int:
        if step not in self.eval_steps:
            raise ValueError(f"step must be one of the measured steps {self.eval_steps}, but got {step!r}")
        return self.eval_steps.index(step)

    def val_losses(self, layer_dropout: float, step: int) -> Spread:
        """Validation loss (eval mode) at ``step``, one value per seed."""
        index = self._index(step)
        return Spread(tuple(curve.val_losses[index] for curve in self.curves(layer_dropout)))

    def train_losses(self, layer_dropout: float, step: int) -> Spread:
        """Train loss (eval mode, on the training slice) at ``step``, one value per seed."""
        index = self._index(step)
        return Spread(tuple(curve.train_losses[index] for curve in self.curves(layer_dropout)))

    def gaps(self, layer_dropout: float, step: int) -> Spread:
        """Validation minus train loss at ``step``, one value per seed."""
        index = self._index(step)
        return Spread(tuple(c.val_losses[index] - c.train_losses[index] for c in self.curves(layer_dropout)))

    def best_val_losses(self, layer_dropout: float) -> Spread:
        """The lowest validation loss each seed reached at any measured step (what early stopping would keep)."""
        return Spread(tuple(min(curve.val_losses) for curve in self.curves(layer_dropout)))

    def val_differences(self, layer_dropout: float, step: int) -> Spread:
        """Paired: validation loss with ``layer_dropout`` minus the baseline's, same seed; negative = it helped."""
        with_p, without = self.val_losses(layer_dropout, step), self.val_losses(self.baseline, step)
        return Spread(tuple(a - b for a, b in zip(with_p.values, without.values, strict=True)))

    def seeds_train_higher(self, layer_dropout: float, step: int) -> int:
        """In how many seeds ``layer_dropout`` left a higher train loss than the baseline at ``step`` (slower fit)."""
        pairs = zip(self.train_losses(layer_dropout, step).values, self.train_losses(self.baseline, step).values,
                    strict=True)
        return sum(with_p > without for with_p, without in pairs)

    def seeds_helped(self, layer_dropout: float, step: int) -> int:
        """In how many seeds ``layer_dropout`` gave a lower validation loss than the baseline at ``step``."""
        return sum(difference < 0 for difference in self.val_differences(layer_dropout, step).values)


def compare_over_seeds(layer_dropouts: tuple[float, ...] = (0.0, 0.1), seeds: tuple[int, ...] = (0, 1, 2),
                       steps: int = 400, depth: int = 4, train_tokens: int = 1000, eval_every: int = 50,
                       eval_batches: int = 4, device=None) -> SeedComparison:
    """:func:`compare_layer_dropout` for every seed in ``seeds`` (at least 2, distinct ints >= 0).

    The first of ``layer_dropouts`` is the baseline the paired differences are taken against.
    """
    if (not isinstance(seeds, tuple) or len(seeds) < 2 or len(set(seeds)) != len(seeds)
            or any(isinstance(seed, bool) or not isinstance(seed, int) or seed < 0 for seed in seeds)):
        raise ValueError(f"seeds must be a tuple of at least 2 distinct ints >= 0, but got {seeds!r}")
    if not isinstance(layer_dropouts, tuple) or len(set(layer_dropouts)) != len(layer_dropouts):
        raise ValueError(f"layer_dropouts must be a tuple of distinct probabilities, but got {layer_dropouts!r}")
    runs = tuple(compare_layer_dropout(layer_dropouts, steps, depth, train_tokens, eval_every, eval_batches, seed,
                                       device) for seed in seeds)
    return SeedComparison(tuple(float(p) for p in layer_dropouts), seeds, runs)


def describe_step(comparison: SeedComparison, step: int, layer_dropout: float) -> str:
    """Text lines for one measured step: each p's validation, train loss and gap over the seeds, then the paired
    differences of ``layer_dropout`` to the baseline and in how many seeds it gave the lower validation loss."""
    if not isinstance(comparison, SeedComparison):
        raise TypeError(f"comparison must be a SeedComparison, but got {type(comparison).__name__}")
    if layer_dropout not in comparison.layer_dropouts or layer_dropout == comparison.baseline:
        raise ValueError(f"layer_dropout must be one of the compared non-baseline values "
                         f"{comparison.layer_dropouts[1:]}, but got {layer_dropout!r}")
    lines = [f"step {step}, p = {p}: validation {comparison.val_losses(p, step)}, train "
             f"{comparison.train_losses(p, step)}, gap {comparison.gaps(p, step)}" for p in comparison.layer_dropouts]
    difference = comparison.val_differences(layer_dropout, step)
    lines.append(f"step {step}: validation with p = {layer_dropout} minus p = {comparison.baseline}, same seed: "
                 f"{', '.join(f'{d:+.3f}' for d in difference.values)} (mean {difference.mean:+.3f}); lower with "
                 f"p = {layer_dropout} in {comparison.seeds_helped(layer_dropout, step)} of "
                 f"{len(comparison.seeds)} seeds")
    return "\n".join(lines)
