"""What a broken tie does during training: drift, double AdamW updates, and the validation-loss symptom."""

from __future__ import annotations

import functools
import math
import os
import tempfile
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from xtlab.data import get_batch, load_corpus
from xtlab.labs.weight_tying.models import (
    ModelSize,
    build_model,
    embedding_weight,
    output_weight,
    tie_verdict,
)
from xtlab.labs.weight_tying.paths import run_path
from xtlab.threads import one_cpu_thread
from xtlab.training import evaluate_loss, train

TRAIN_SIZE = ModelSize(num_tokens=44, max_seq_len=32, dim=32, depth=2, heads=2)  # 44: the corpus vocabulary
BATCH_SIZE, SEQ_LEN = 8, 32
EMBEDDING_INIT_STD = 0.02


def _check_positive(name: str, value, *, integer: bool = False) -> None:
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not value > 0:
        raise ValueError(f"{name} must be {'an int' if integer else 'a number'} > 0, but got {value!r}")


def _check_non_negative(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError(f"{name} must be a number >= 0, but got {value!r}")


def _batch_fn(split: str, seed: int):
    corpus = load_corpus()
    data = corpus.train if split == "train" else corpus.val

    def batch(step: int):
        generator = torch.Generator().manual_seed(seed * 100_003 + step)  # the same batch for every style
        return get_batch(data, BATCH_SIZE, SEQ_LEN, generator)

    return batch


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
    _check_positive("steps", steps, integer=True)
    _check_positive("lr", lr)
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
    """AdamW on a truly tied model vs an half-tied one (two Parameters over one storage), same data.

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
    _check_positive("steps", steps, integer=True)
    _check_positive("lr", lr)
    _check_non_negative("weight_decay", weight_decay)
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


@dataclass(frozen=True)
class SymptomResult:
    """The Lingua report, replayed: train on a meta-initialised model, save, reload into a tied model.

    Attributes (per style, keyed "naive" and "tied_linear"):
        verdict_while_training: the tie verdict of the model that trained.
        train_losses: (steps,) training losses.
        val_trained: validation loss of the model in memory, right after training.
        val_reloaded: validation loss after ``torch.save(state_dict)`` and loading into a freshly built model.
        checkpoint_keys_differ: whether the checkpoint's embedding and output tensors hold different values.
    """

    steps: int
    verdict_while_training: dict[str, str]
    train_losses: dict[str, np.ndarray]
    val_trained: dict[str, float]
    val_reloaded: dict[str, float]
    checkpoint_keys_differ: dict[str, bool]


def _train_meta_initialised(style: str, steps: int, lr: float, seed: int) -> nn.Module:
    # large-model loaders build on meta, allocate with to_empty, then fill in the initial values
    initial = build_model(style, seed=seed, size=TRAIN_SIZE)
    with torch.no_grad():  # GPT-2's small embedding init: training, not the init, then shapes the tied weight
        embedding_weight(initial).normal_(0.0, EMBEDDING_INIT_STD, generator=torch.Generator().manual_seed(seed))
    model = build_model(style, seed=seed, size=TRAIN_SIZE, device="meta")
    model.to_empty(device="cpu")
    model.load_state_dict(initial.state_dict())
    return model


def _validation_symptom(steps: int, lr: float, seed: int, val_batches: int) -> SymptomResult:
    _check_positive("steps", steps, integer=True)
    _check_positive("lr", lr)
    _check_positive("val_batches", val_batches, integer=True)
    verdicts, losses, val_trained, val_reloaded, differ = {}, {}, {}, {}, {}
    train_batches, val_batch_fn = _batch_fn("train", seed), _batch_fn("val", seed)
    for style in ("naive", "tied_linear"):
        torch.manual_seed(seed)
        model = _train_meta_initialised(style, steps, lr, seed)
        verdicts[style] = tie_verdict(model)
        history = train(model, train_batches, steps, lr=lr, device="cpu")
        losses[style] = np.array(history.losses)
        val_trained[style] = evaluate_loss(model, val_batch_fn, val_batches)
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "model.pt")
            torch.save(model.state_dict(), path)
            state = torch.load(path, weights_only=True)
        differ[style] = "to_logits.weight" in state and not torch.equal(state["token_emb.weight"],
                                                                        state["to_logits.weight"])
        reloaded = build_model(style, seed=seed + 1, size=TRAIN_SIZE)
        reloaded.load_state_dict(state)
        val_reloaded[style] = evaluate_loss(reloaded, val_batch_fn, val_batches)
    return SymptomResult(steps, verdicts, losses, val_trained, val_reloaded, differ)


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


def validation_symptom(steps: int = 100, lr: float = 2e-2, seed: int = 0, val_batches: int = 2) -> SymptomResult:
    """Train a naive and a TiedLinear model built via meta -> to_empty; save, reload, compare validation loss.

    The naive model trains untied (to_empty made new Parameters), so its checkpoint holds two different
    tensors; loading it into a freshly built naive model (tied again) keeps only the last key's values for both.
    """
    with one_cpu_thread():
        return _validation_symptom(steps, lr, seed, val_batches)
