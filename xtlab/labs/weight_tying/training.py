"""What a broken tie does during training: the two weights drift apart, and half-tied weights get two AdamW
updates per step."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from xtlab._checks import check_int, check_number
from xtlab.labs.weight_tying.models import (
    build_model,
    embedding_weight,
    output_weight,
    tie_verdict,
)
from xtlab.labs.weight_tying.paths import run_path
from xtlab.threads import one_cpu_thread
from xtlab.training import train


def _random_tokens(step: int, num_tokens: int):
    generator = torch.Generator().manual_seed(step)
    x = torch.randint(0, num_tokens, (4, 12), generator=generator)
    return x, torch.roll(x, -1, dims=1)


@dataclass(frozen=True)
class DriftResult:
    """Embedding vs output during a few AdamW steps after a path.

    Attributes:
        verdict: the tie verdict after the path (and after training).
        distances: (steps + 1,) Frobenius distance ||embedding - output|| before each step and after the last.
        update_sizes: (steps,) Frobenius norm of each step's change of the embedding weight.
    """

    style: str
    path: str
    verdict: str
    verdict_after_training: str
    distances: np.ndarray
    update_sizes: np.ndarray
    error: str | None = None


def _drift_after_path(style: str, path: str, steps: int, lr: float, seed: int) -> DriftResult:
    check_int("steps", steps, minimum=1)
    check_number("lr", lr, minimum=1e-12)
    outcome = run_path(style, path, seed)
    if outcome.model is None:
        return DriftResult(style, path, outcome.verdict, outcome.verdict, np.zeros(0), np.zeros(0), outcome.error)
    model = outcome.model.float()  # .half() paths train in float32: CPU AdamW on float16 is not the point here
    num_tokens = embedding_weight(model).shape[0]
    distances, sizes = [], []

    def distance() -> float:
        return float((embedding_weight(model) - output_weight(model)).detach().norm())

    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    for step in range(steps):
        before = embedding_weight(model).detach().clone()
        distances.append(distance())
        train(model, lambda _, step=step: _random_tokens(seed * 1000 + step, num_tokens), 1, optimizer=optimizer)
        sizes.append(float((embedding_weight(model).detach() - before).norm()))
    distances.append(distance())
    return DriftResult(style, path, outcome.verdict, tie_verdict(model), np.array(distances), np.array(sizes))


@dataclass(frozen=True)
class UpdateComparison:
    """AdamW on a tied model vs a half-tied one (two Parameters over one storage), same data.

    Attributes:
        tied_sizes, half_tied_sizes: (steps,) norm of each step's change of the shared weight.
        ratios: half-tied / tied, per step.
        decays_tied, decays_half_tied: how many times one AdamW step with zero gradients multiplied the weight
            by ``1 - lr * weight_decay`` (1 means once per step, as intended).
    """

    tied_sizes: np.ndarray
    half_tied_sizes: np.ndarray
    ratios: np.ndarray
    decays_tied: float
    decays_half_tied: float
    lr: float
    weight_decay: float

    @property
    def mean_ratio(self) -> float:
        return float(np.mean(self.ratios))


def _update_sizes(model: nn.Module, steps: int, lr: float, seed: int) -> np.ndarray:
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    num_tokens = embedding_weight(model).shape[0]
    sizes = []
    for step in range(steps):
        before = embedding_weight(model).detach().clone()
        train(model, lambda _, step=step: _random_tokens(seed * 1000 + step, num_tokens), 1, optimizer=optimizer)
        sizes.append(float((embedding_weight(model).detach() - before).norm()))
    return np.array(sizes)


def _decay_count(model: nn.Module, lr: float, weight_decay: float) -> float:
    # one AdamW step with all-zero gradients moves a weight only by decoupled weight decay
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    for parameter in model.parameters():
        parameter.grad = torch.zeros_like(parameter)
    before = embedding_weight(model).detach().clone()
    optimizer.step()
    after = embedding_weight(model).detach()
    factor = float(after.norm() / before.norm())
    return math.log(factor) / math.log(1.0 - lr * weight_decay)


def _compare_half_tied_updates(steps: int, lr: float, weight_decay: float, seed: int) -> UpdateComparison:
    check_int("steps", steps, minimum=1)
    check_number("lr", lr, minimum=1e-12)
    check_number("weight_decay", weight_decay, minimum=0.0)
    if lr * weight_decay >= 1:
        raise ValueError(f"lr * weight_decay must be < 1 for AdamW's decay factor, but got {lr} * {weight_decay}")
    tied = build_model("naive", seed=seed)
    half_tied = run_path("naive", "assign", seed).model
    tied_sizes = _update_sizes(tied, steps, lr, seed)
    half_tied_sizes = _update_sizes(half_tied, steps, lr, seed)
    decays = [_decay_count(model, lr, weight_decay) if weight_decay > 0 else float("nan")
              for model in (build_model("naive", seed=seed), run_path("naive", "assign", seed).model)]
    return UpdateComparison(tied_sizes, half_tied_sizes, half_tied_sizes / tied_sizes, decays[0], decays[1],
                            lr, weight_decay)


def drift_after_path(style: str, path: str, steps: int = 5, lr: float = 1e-2, seed: int = 0) -> DriftResult:
    """Run ``path`` on a ``style`` model, then train it ``steps`` AdamW steps on random tokens.

    Untied weights drift apart (distance grows from 0); tied ones stay at distance 0.
    A path that raises gives empty arrays and its error text.
    """
    with one_cpu_thread():
        return _drift_after_path(style, path, steps, lr, seed)


@functools.lru_cache(maxsize=16)  # the notebook and its panel ask for the same comparison
def compare_half_tied_updates(steps: int = 5, lr: float = 1e-3, weight_decay: float = 0.1,
                            seed: int = 0) -> UpdateComparison:
    """Train a naive-tied model and the same model after ``load_state_dict(assign=True)`` (half-tied) side by side.

    Both start from the same values and see the same batches; the half-tied model's two Parameters each get
    an AdamW update of the one shared memory, so its steps are larger, and weight decay is applied twice.
    """
    with one_cpu_thread():
        return _compare_half_tied_updates(steps, lr, weight_decay, seed)
