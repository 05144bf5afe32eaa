"""Lab 01 experiments: train a tiny model with layer dropout and measure which blocks got no gradient.

Everything here is a pure function returning plain data; the lab's widgets and plots call it.
A "block" is one residual branch (``attn_layers.layers.i``): a layer of depth ``d`` has ``2 * d`` blocks
(attention + feed-forward), and layer dropout skips each block independently with probability ``p``.
"""

from __future__ import annotations

import functools
import inspect
import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import torch

from xtlab.data import get_batch, load_corpus
from xtlab.device import resolve_device
from xtlab.diagnostics import GradientPresence, GradientPresenceRecorder, GradientState
from xtlab.model import AttentionLayers, Decoder, TransformerWrapper
from xtlab.seeding import seed_everything
from xtlab.threads import one_cpu_thread
from xtlab.training import lm_loss

MODES = ("train", "eval")
BLOCK_PREFIX = "attn_layers.layers."
BLOCK_DEPTH = 3  # "attn_layers.layers.3" has three name components
DIM, HEADS, BATCH_SIZE, SEQ_LEN, LEARNING_RATE = 32, 2, 8, 16, 3e-3
FUSED_DEVICE_TYPES = frozenset({"cpu", "cuda", "mps"})  # devices with a fused AdamW kernel in every torch >= 2.13


def size_kwargs() -> dict[str, int]:
    """The head width, passed explicitly when the library takes one: ``dim // heads`` keeps the model tiny
    (x-transformers' default head is 64 wide whatever ``dim``, which would quadruple this model's attention)."""
    if "attn_dim_head" in inspect.signature(AttentionLayers.__init__).parameters:
        return {"attn_dim_head": DIM // HEADS}
    return {}


def build_model(vocab_size: int, depth: int, layer_dropout: float, neuron_dropout: float = 0.0,
                seed: int = 0) -> TransformerWrapper:
    """The lab's tiny decoder (dim 32, 2 heads of 16), built on the CPU after seeding so every device sees it alike."""
    seed_everything(seed)
    stack = Decoder(DIM, depth, HEADS, layer_dropout=layer_dropout, attn_dropout=neuron_dropout,
                    ff_dropout=neuron_dropout, **size_kwargs())
    return TransformerWrapper(vocab_size, SEQ_LEN, stack)


def make_optimizer(model: torch.nn.Module, weight_decay: float = 0.01) -> torch.optim.AdamW:
    """The lab's AdamW (PyTorch's defaults but the learning rate), with the ``fused`` kernel where the parameters'
    device has one (the whole update in one pass over each parameter: 2.6x faster than ``foreach`` on this tiny
    model, measured on a CPU), else ``foreach``. Like the default, it skips every parameter whose ``.grad`` is
    ``None``."""
    parameters = list(model.parameters())
    kernel = "fused" if {p.device.type for p in parameters} <= FUSED_DEVICE_TYPES else "foreach"
    return torch.optim.AdamW(parameters, lr=LEARNING_RATE, weight_decay=weight_decay, **{kernel: True})


@dataclass(frozen=True)
class LayerDropoutRun:
    """One short training run and what the gradient-presence recorder saw.

    Attributes:
        layer_dropout, depth, steps, seed, mode, neuron_dropout: the settings of the run.
        presence: one row per parameter, one step per optimizer step.
        reported_skips: per step, the blocks the model said it skipped (``model.skipped_blocks``; for
            x-transformers, which reports nothing, the skips its Python ``random()`` draws imply).
        block_labels: the blocks, ``attn_layers.layers.0`` ... in order.
        block_kinds: each block's kind, ``"attn"`` or ``"ff"``.
        library: which library's model ran, ``"xtlab"`` or ``"x-transformers"``.
    """

    layer_dropout: float
    depth: int
    steps: int
    seed: int
    mode: str
    neuron_dropout: float
    presence: GradientPresence
    reported_skips: tuple[tuple[str, ...], ...]
    block_labels: tuple[str, ...]
    block_kinds: tuple[str, ...]
    library: str = "xtlab"

    @property
    def num_blocks(self) -> int:
        return len(self.block_labels)

    @property
    def losses(self) -> tuple[float, ...]:
        return self.presence.losses

    @property
    def effective_layer_dropout(self) -> float:
        """The skip probability actually in force: ``layer_dropout`` in train mode, 0 in eval mode."""
        return self.layer_dropout if self.mode == "train" else 0.0

    def grouped(self) -> GradientPresence:
        """One row per module at block depth (embeddings, each block, final norm, output)."""
        return self.presence.grouped(BLOCK_DEPTH)


def _check_settings(layer_dropout, depth, steps, seed, mode, neuron_dropout) -> None:
    for name, value in (("layer_dropout", layer_dropout), ("neuron_dropout", neuron_dropout)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"{name} must be a number, but got {type(value).__name__}: {value!r}")
        if not 0.0 <= value < 1.0:
            raise ValueError(f"{name} must be in [0, 1), but got {value}")
    for name, value, minimum in (("depth", depth, 1), ("steps", steps, 1), ("seed", seed, 0)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an int, but got {type(value).__name__}: {value!r}")
        if value < minimum:
            raise ValueError(f"{name} must be >= {minimum}, but got {value}")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, but got {mode!r}")


def run_layer_dropout(layer_dropout: float = 0.1, depth: int = 4, steps: int = 60, seed: int = 0,
                      mode: str = "train", neuron_dropout: float = 0.0, device=None) -> LayerDropoutRun:
    """Train the tiny decoder on the bundled corpus and record, at every step, which parameters got a gradient.

    Args:
        layer_dropout: probability of skipping each block in a training forward pass, in [0, 1).
        depth: layers (each is 2 blocks). steps: optimizer steps. seed: seeds the model, the batches and the skips.
        mode: ``"train"`` (dropout active) or ``"eval"`` (forward in eval mode: nothing is skipped).
        neuron_dropout: ordinary dropout inside attention and feed-forward, for contrast.
        device: where to run (``None``: CUDA when present). Skips are drawn on the CPU, so they match everywhere.

    Results are memoised on the settings (they are immutable), so a panel and a notebook cell share a run.
    """
    _check_settings(layer_dropout, depth, steps, seed, mode, neuron_dropout)
    return _run_layer_dropout(float(layer_dropout), depth, steps, seed, mode, float(neuron_dropout),
                              resolve_device(device))


@functools.lru_cache(maxsize=64)
def _run_layer_dropout(layer_dropout: float, depth: int, steps: int, seed: int, mode: str, neuron_dropout: float,
                       device: torch.device) -> LayerDropoutRun:
    session = _training_session(layer_dropout, depth, seed, mode, neuron_dropout, device)
    try:
        session.advance_to(steps)
    except BaseException:  # interrupted mid-step: its model and record may disagree, so no later run resumes it
        _training_session.cache_clear()
        raise
    return session.run(steps)


@functools.lru_cache(maxsize=16)
def _training_session(layer_dropout: float, depth: int, seed: int, mode: str, neuron_dropout: float,
                      device: torch.device) -> _TrainingSession:
    return _TrainingSession(layer_dropout, depth, seed, mode, neuron_dropout, device)


class _TrainingSession:
    """One setting's training, kept alive so that a longer run resumes where a shorter one stopped and a shorter
    one is the longer one's first steps (each step draws its batch and skips in order, so the first ``n`` steps
    of any run are the same: tested bit for bit against fresh runs). Resuming restores the random state the
    last step left, so whatever ran in between changes nothing."""

    def __init__(self, layer_dropout: float, depth: int, seed: int, mode: str, neuron_dropout: float,
                 device: torch.device) -> None:
        self.settings = (layer_dropout, depth, seed, mode, neuron_dropout)
        self.device = device
        self.corpus = load_corpus()
        self.model = build_model(self.corpus.tokenizer.vocab_size, depth, layer_dropout, neuron_dropout,
                                 seed).to(device)
        self.model.train(mode == "train")
        self.optimizer = make_optimizer(self.model)
        self.parameters = list(self.model.parameters())
        self.recorder = GradientPresenceRecorder(self.model)
        self.batches = torch.Generator().manual_seed(seed)
        self.random_state = _random_state(device)  # as build_model's seeding left it
        self.reported: list[tuple[str, ...]] = []

    def advance_to(self, steps: int) -> None:
        """Train until ``steps`` steps are recorded (nothing to do when there are already that many)."""
        if len(self.reported) >= steps:
            return
        outside = _random_state(self.device)
        _set_random_state(self.device, self.random_state)
        try:
            with one_cpu_thread():
                for step in range(len(self.reported), steps):
                    self._step(step)
            self.random_state = _random_state(self.device)
        finally:
            _set_random_state(self.device, outside)

    def _step(self, step: int) -> None:
        for parameter in self.parameters:
            parameter.grad = None
        loss = lm_loss(self.model, get_batch(self.corpus.train, BATCH_SIZE, SEQ_LEN, self.batches, self.device))
        skipped = tuple(self.model.skipped_blocks)
        loss.backward()
        self.optimizer.step()  # leaves .grad in place for the recorder
        self.recorder.record(step, loss)
        self.reported.append(skipped)

    def run(self, steps: int) -> LayerDropoutRun:
        """The record of the first ``steps`` steps (already trained)."""
        layers = self.model.attn_layers.layers
        labels = tuple(f"{BLOCK_PREFIX}{i}" for i in range(len(layers)))
        layer_dropout, depth, seed, mode, neuron_dropout = self.settings
        return LayerDropoutRun(layer_dropout, depth, steps, seed, mode, neuron_dropout,
                               presence=self.recorder.result().first(steps),
                               reported_skips=tuple(self.reported[:steps]), block_labels=labels,
                               block_kinds=tuple(block.kind for block in layers))


def _random_state(device: torch.device) -> tuple[torch.Tensor, torch.Tensor | None]:
    """torch's CPU generator state and, on CUDA, the device's: what layer and neuron dropout draw from."""
    return torch.get_rng_state(), torch.cuda.get_rng_state(device) if device.type == "cuda" else None


def _set_random_state(device: torch.device, state: tuple[torch.Tensor, torch.Tensor | None]) -> None:
    torch.set_rng_state(state[0])
    if state[1] is not None:
        torch.cuda.set_rng_state(state[1], device)


def block_presence_matrix(run: LayerDropoutRun) -> tuple[np.ndarray, list[str]]:
    """The exercise's input: ``present[t, j]`` is True when block ``j`` got a gradient at step ``t``.

    Shape: present (steps, num_blocks) bool; labels has num_blocks names.
    """
    grouped = run.grouped()
    columns = [grouped.labels.index(label) for label in run.block_labels]
    states = np.array(grouped.state_matrix(), dtype=int)
    return states[:, columns] != int(GradientState.NO_GRADIENT), list(run.block_labels)


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (stays inside [0, 1] and behaves at 0 or ``trials``).

    Args:
        successes: number of successes, 0..trials. trials: number of trials (>= 1). confidence: in (0, 1).
    """
    for name, value in (("successes", successes), ("trials", trials)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{name} must be an int, but got {type(value).__name__}: {value!r}")
    if trials < 1:
        raise ValueError(f"trials must be >= 1, but got {trials}")
    if not 0 <= successes <= trials:
        raise ValueError(f"successes must be in [0, trials={trials}], but got {successes}")
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not 0 < confidence < 1:
        raise ValueError(f"confidence must be a number strictly between 0 and 1, but got {confidence!r}")
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    share = successes / trials
    denominator = 1 + z * z / trials
    center = (share + z * z / (2 * trials)) / denominator
    half_width = z * math.sqrt(share * (1 - share) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, center - half_width), min(1.0, center + half_width)


@dataclass(frozen=True)
class SkipStatistics:
    """Measured skip rates of a run next to what probability theory predicts.

    Attributes:
        skipped_block_steps / block_steps: (step, block) cells with no gradient, out of all cells.
        skip_interval: 95% Wilson interval of the skipped share; ``p`` should usually lie inside.
        all_blocks_steps: steps where every block got a gradient; ``all_blocks_expected`` = ``(1 - p) ** L``.
        params_without_gradient / param_steps: (step, parameter) cells with ``.grad is None``.
        losses_finite: every step's loss was a finite number.
    """

    layer_dropout: float
    num_blocks: int
    steps: int
    skipped_block_steps: int
    block_steps: int
    skip_interval: tuple[float, float]
    all_blocks_steps: int
    all_blocks_expected: float
    all_blocks_interval: tuple[float, float]
    params_without_gradient: int
    param_steps: int
    losses_finite: bool

    @property
    def skip_fraction(self) -> float:
        return self.skipped_block_steps / self.block_steps

    @property
    def all_blocks_fraction(self) -> float:
        return self.all_blocks_steps / self.steps

    @property
    def p_in_interval(self) -> bool:
        low, high = self.skip_interval
        return low <= self.layer_dropout <= high


def skip_statistics(run: LayerDropoutRun) -> SkipStatistics:
    """Count skipped blocks and all-blocks steps in ``run`` and compare them with ``p`` and ``(1 - p) ** L``."""
    present, _ = block_presence_matrix(run)
    skipped = int((~present).sum())
    all_blocks = int(present.all(axis=1).sum())
    p = run.effective_layer_dropout
    param_cells = [state for row in run.presence.states for state in row]
    return SkipStatistics(
        layer_dropout=p,
        num_blocks=run.num_blocks,
        steps=run.steps,
        skipped_block_steps=skipped,
        block_steps=int(present.size),
        skip_interval=wilson_interval(skipped, int(present.size)),
        all_blocks_steps=all_blocks,
        all_blocks_expected=(1.0 - p) ** run.num_blocks,
        all_blocks_interval=wilson_interval(all_blocks, run.steps),
        params_without_gradient=sum(state == GradientState.NO_GRADIENT for state in param_cells),
        param_steps=len(param_cells),
        losses_finite=all(math.isfinite(loss) for loss in run.losses),
    )


@dataclass(frozen=True)
class StepMismatch:
    """A step where "no gradient" and "reported skipped" disagree (never expected)."""

    step: int
    missing_but_not_skipped: tuple[str, ...]
    skipped_but_present: tuple[str, ...]


@dataclass(frozen=True)
class SkipGradientLink:
    """Per-step comparison of the parameters without gradient and the parameters of the reported skipped blocks."""

    steps_checked: int
    steps_with_skips: int
    mismatches: tuple[StepMismatch, ...]

    @property
    def holds(self) -> bool:
        return not self.mismatches


def parameters_of_blocks(parameter_names: tuple[str, ...] | list[str], blocks: tuple[str, ...]) -> set[str]:
    """The parameter names that live inside any of ``blocks`` (module names such as ``attn_layers.layers.3``)."""
    return {name for name in parameter_names if any(name.startswith(block + ".") for block in blocks)}


def check_skip_gradient_link(run: LayerDropoutRun) -> SkipGradientLink:
    """At every step, is {parameters with no gradient} exactly {parameters of the blocks the model skipped}?"""
    mismatches = []
    for position, skipped in enumerate(run.reported_skips):
        missing = set(run.presence.without_gradient(position))
        expected = parameters_of_blocks(run.presence.labels, skipped)
        if missing != expected:
            mismatches.append(StepMismatch(run.presence.steps[position], tuple(sorted(missing - expected)),
                                           tuple(sorted(expected - missing))))
    with_skips = sum(bool(skipped) for skipped in run.reported_skips)
    return SkipGradientLink(len(run.reported_skips), with_skips, tuple(mismatches))


def steps_without_gradient(run: LayerDropoutRun, suffix: str) -> int:
    """Steps at which some parameter whose name ends with ``suffix`` (e.g. ``"to_q.weight"``) had no gradient."""
    if not isinstance(run, LayerDropoutRun):
        raise TypeError(f"run must be a LayerDropoutRun, but got {type(run).__name__}")
    if not isinstance(suffix, str) or not suffix:
        raise ValueError(f"suffix must be a non-empty str, but got {suffix!r}")
    if not any(label.endswith(suffix) for label in run.presence.labels):
        raise ValueError(f"no parameter of this {run.library} model ends with {suffix!r}")
    return sum(any(name.endswith(suffix) for name in run.presence.without_gradient(position))
               for position in range(len(run.presence.steps)))
