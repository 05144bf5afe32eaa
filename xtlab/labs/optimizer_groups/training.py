"""Lab 04 training experiments: what weight decay does to memory tokens and norm gains, step by step.

Both experiments train briefly on the bundled character corpus (CPU seconds) and record parameter norms
after every optimizer step. Models and batches are built on the CPU, so every device starts from the same values.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from torch import nn

from xtlab.data import get_batch, load_corpus
from xtlab.device import resolve_device
from xtlab.diagnostics.optimizer_groups import param_groups
from xtlab.labs.optimizer_groups.specimens import specimen_model
from xtlab.threads import one_cpu_thread
from xtlab.training import train

# label -> (strategy, exempt categories); None means the naive AdamW(model.parameters(), weight_decay=wd)
GROUPINGS: dict[str, tuple[str, tuple[str, ...]] | None] = {
    "by type": ("by_type", ("bias", "norm gain", "embedding", "memory tokens", "memory key/values")),
    "by ndim": ("by_ndim", ()),
    "decay everything": None,
}
MEMORY_TOKENS = "rmsnorm_lm.memory_tokens"
NORM_GAIN = "rmsnorm_lm.attn_layers.final_norm.g"


@lru_cache(maxsize=1)
def _train_ids() -> torch.Tensor:
    return load_corpus().train


def _batch_fn(batch_size: int = 8, seq_len: int = 16):
    generator = torch.Generator().manual_seed(0)
    data = _train_ids()
    return lambda step: get_batch(data, batch_size, seq_len, generator)


def _check_training_args(weight_decay: float, steps: int, lr: float) -> None:
    if isinstance(weight_decay, bool) or not isinstance(weight_decay, (int, float)) or weight_decay < 0:
        raise ValueError(f"weight_decay must be a number >= 0, but got {weight_decay!r}")
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= 1000:
        raise ValueError(f"steps must be an int in [1, 1000], but got {steps!r}")
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not lr > 0:
        raise ValueError(f"lr must be a number > 0, but got {lr!r}")


def _optimizer(model: nn.Module, grouping: str, weight_decay: float, lr: float) -> torch.optim.AdamW:
    if grouping not in GROUPINGS:
        raise ValueError(f"grouping must be one of {list(GROUPINGS)}, but got {grouping!r}")
    spec = GROUPINGS[grouping]
    if spec is None:
        return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    strategy, exempt = spec
    return torch.optim.AdamW(param_groups(model, weight_decay, strategy, exempt), lr=lr)


@dataclass(frozen=True)
class NormTrace:
    """Per-step norms of chosen parameters under several groupings.

    Attributes:
        steps: 0 (before training) .. number of steps.
        norms: grouping label -> parameter name -> array (steps + 1,) of L2 norms.
        losses: grouping label -> array (steps,) of training losses.
        weight_decay, lr: the settings used.
    """

    steps: np.ndarray
    norms: dict[str, dict[str, np.ndarray]]
    losses: dict[str, np.ndarray]
    weight_decay: float
    lr: float

    def ratio(self, grouping: str, name: str) -> float:
        """Final norm / initial norm of ``name`` under ``grouping``."""
        trace = self.norms[grouping][name]
        return float(trace[-1] / trace[0])


def _train_and_record(model: nn.Module, optimizer: torch.optim.Optimizer, steps: int,
                      record: dict[str, Callable[[nn.Module], float]]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Train; return each recorded quantity after 0..steps updates, and the losses."""
    values: dict[str, list[float]] = {key: [] for key in record}

    def before_update(step: int, loss: float, m: nn.Module) -> None:  # sees the model after `step` updates
        for key, fn in record.items():
            values[key].append(fn(m))

    with one_cpu_thread():
        history = train(model, _batch_fn(), steps, optimizer=optimizer, callback=before_update)
    for key, fn in record.items():
        values[key].append(fn(model))
    return {key: np.asarray(v) for key, v in values.items()}, np.asarray(history.losses)


def _norm_of(name: str):
    return lambda model: float(model.get_parameter(name).detach().norm().cpu())


@lru_cache(maxsize=32)
def _norms_under_groupings(weight_decay: float, steps: int, lr: float, device: str) -> NormTrace:
    names = (MEMORY_TOKENS, NORM_GAIN)
    norms, losses = {}, {}
    for grouping in GROUPINGS:
        model = specimen_model(seed=0).to(device)
        optimizer = _optimizer(model, grouping, weight_decay, lr)
        norms[grouping], losses[grouping] = _train_and_record(model, optimizer, steps,
                                                              {name: _norm_of(name) for name in names})
    return NormTrace(np.arange(steps + 1), norms, losses, float(weight_decay), float(lr))


def norms_under_groupings(weight_decay: float = 1.0, steps: int = 60, lr: float = 1e-2,
                          device: str | torch.device | None = None) -> NormTrace:
    """Train the specimen under each grouping in ``GROUPINGS``; record the norm of its memory tokens and of a norm
    gain (the RMSNorm LM's final norm) after every step.

    Cached on the arguments: a widget that returns to a setting redraws at once.

    Raises:
        ValueError: weight_decay < 0, steps outside [1, 1000] or lr <= 0.
    """
    _check_training_args(weight_decay, steps, lr)
    return _norms_under_groupings(float(weight_decay), steps, float(lr), str(resolve_device(device)))


@dataclass(frozen=True)
class GainTrace:
    """Per-step mean effective norm gain (what multiplies the normalised input) with and without unit offset.

    Attributes:
        steps: 0 .. number of steps.
        gains: "gain stored as is" / "gain stored as offset from 1" -> array (steps + 1,).
        losses: same keys -> array (steps,) of training losses.
    """

    steps: np.ndarray
    gains: dict[str, np.ndarray]
    losses: dict[str, np.ndarray]
    weight_decay: float
    lr: float


UNIT_OFFSET_LABELS = {False: "gain stored as is", True: "gain stored as offset from 1"}


def _mean_effective_gain(model: nn.Module) -> float:
    gains = [module.gain().detach().flatten() for module in model.modules() if hasattr(module, "gain_name")]
    return float(torch.cat(gains).mean().cpu())


@lru_cache(maxsize=32)
def _gains_under_decay(weight_decay: float, steps: int, lr: float, device: str) -> GainTrace:
    gains, losses = {}, {}
    for unit_offset, label in UNIT_OFFSET_LABELS.items():
        model = specimen_model(seed=0, norm_unit_offset=unit_offset).to(device)
        optimizer = _optimizer(model, "decay everything", weight_decay, lr)
        recorded, losses[label] = _train_and_record(model, optimizer, steps, {"gain": _mean_effective_gain})
        gains[label] = recorded["gain"]
    return GainTrace(np.arange(steps + 1), gains, losses, float(weight_decay), float(lr))


def gains_under_strong_decay(weight_decay: float = 5.0, steps: int = 60, lr: float = 1e-2,
                             device: str | torch.device | None = None) -> GainTrace:
    """Train the specimen with every parameter decayed (norm gains included), once with gains stored as is
    and once with ``norm_unit_offset=True``; record the mean effective gain of all its norms after every step.

    Decay pulls the stored value towards 0: the effective gain towards 0 without the offset, towards 1 with it.

    Raises:
        ValueError: weight_decay < 0, steps outside [1, 1000] or lr <= 0.
    """
    _check_training_args(weight_decay, steps, lr)
    return _gains_under_decay(float(weight_decay), steps, float(lr), str(resolve_device(device)))
