"""Lab 02: launch every FSDP scenario and the Lingua replay in ONE start of two real processes, then reload the
trained checkpoints without FSDP, as an evaluation script does.

Starting ranks costs seconds (each is a Python process importing torch), so one launch runs everything and
``run_fsdp`` caches its report: the notebook, its plots and its audit read the same run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from xtlab._checks import check_int, check_number, check_type
from xtlab.diagnostics import ddp_runner
from xtlab.labs.weight_tying.fsdp_ranks import (
    BACKEND,
    DEVICE,
    Scenario,
    ScenarioOutcome,
    TrainConfig,
    TrainOutcome,
    corpus_batches,
    fsdp_rank,
)
from xtlab.labs.weight_tying.models import build_model, tie_verdict
from xtlab.threads import one_cpu_thread
from xtlab.training import evaluate_loss

SCENARIOS: tuple[Scenario, ...] = (
    Scenario("naive, root group", "naive"),
    Scenario("naive, a group each", "naive", "separate"),
    Scenario("naive, fully_shard([emb, out])", "naive", "shared"),
    Scenario("TiedLinear, root group", "tied_linear"),
    Scenario("TiedLinear, embedding in own group", "tied_linear", "separate"),
    Scenario("registered TiedLinear, root group", "registered"),
    Scenario("registered, embedding in own group", "registered", "separate"),
    Scenario("naive, to_empty then fully_shard", "naive", "root", "to_empty_then_wrap"),
    Scenario("naive, fully_shard then to_empty", "naive", "root", "wrap_then_to_empty"),
    Scenario("TiedLinear, to_empty then fully_shard", "tied_linear", "root", "to_empty_then_wrap"),
)
REPLAY = TrainConfig(seeds=(0, 1), steps=30)  # the notebook's replay: 2 seeds x 2 styles, 30 AdamW steps each
GRADIENT_GAP_TOLERANCE = 1e-5  # relative: float32 sums in a different order differ by ~1e-7


@dataclass(frozen=True)
class ScenarioRow:
    """One scenario as every rank saw it."""

    scenario: Scenario
    ranks: tuple[ScenarioOutcome, ...]

    @property
    def error(self) -> str | None:
        """The error FSDP raised (rank 0's text; every rank raises the same), or None."""
        return next((outcome.error for outcome in self.ranks if outcome.error), None)

    @property
    def stage(self) -> str:
        return next((outcome.stage for outcome in self.ranks if outcome.error), "")

    @property
    def elements_per_rank(self) -> tuple[int, ...]:
        """Elements of the embedding and output weights each rank stores (its shards)."""
        return tuple(outcome.tie_elements_local for outcome in self.ranks)

    @property
    def tie_parameters(self) -> int:
        return self.ranks[0].tie_parameters

    @property
    def grads_meet(self) -> bool:
        """On every rank the embedding's gradient equals the tied model's (input side + output side)."""
        return self.error is None and all(o.grad_gap < GRADIENT_GAP_TOLERANCE for o in self.ranks)

    @property
    def tie_holds_after_step(self) -> bool:
        """One Parameter behind both, equal values after an AdamW step, on every rank."""
        return self.error is None and all(o.same_object and o.values_equal_after_step for o in self.ranks)

    @property
    def outcome(self) -> str:
        """``"error"``, ``"tied"`` (one weight, both gradients) or ``"untied"`` (trains two weights, no error)."""
        if self.error is not None:
            return "error"
        return "tied" if self.grads_meet and self.tie_holds_after_step else "untied"


@dataclass(frozen=True)
class ReloadRow:
    """One style and seed of the Lingua replay: trained under FSDP, then reloaded without it.

    Attributes:
        tie_parameters: Parameter objects behind embedding and output while training under FSDP.
        checkpoint_differs: the full state dict holds two different tensors for embedding and output.
        val_in_memory: validation loss of the sharded model right after training.
        val_reloaded: validation loss after loading the state dict into a freshly built model without FSDP.
        verdict_reloaded: the reloaded model's tie verdict.
    """

    style: str
    seed: int
    tie_parameters: int
    first_loss: float
    last_loss: float
    checkpoint_differs: bool
    val_in_memory: float
    val_reloaded: float
    verdict_reloaded: str

    @property
    def reload_gap(self) -> float:
        return self.val_reloaded - self.val_in_memory


@dataclass(frozen=True)
class FSDPReport:
    """Everything one launch measured.

    Attributes:
        ok: every rank finished; errors: ``{rank: last line of its error}`` otherwise.
        backend, world_size, torch_version, seconds: how it ran (seconds include process start-up).
        scenarios: one row per scenario; reloads: one row per (seed, style) of the replay.
    """

    ok: bool
    errors: dict[int, str]
    backend: str
    world_size: int
    torch_version: str
    seconds: float
    scenarios: tuple[ScenarioRow, ...]
    reloads: tuple[ReloadRow, ...]
    config: TrainConfig

    @property
    def device(self) -> str:
        """The device type of the tied weight's shards, as every rank reported it (``"cpu"`` by design)."""
        return ", ".join(sorted({o.device for row in self.scenarios for o in row.ranks if o.device})) or "none"

    def scenario(self, name: str) -> ScenarioRow:
        for row in self.scenarios:
            if row.scenario.name == name:
                return row
        raise KeyError(f"no scenario named {name!r}; the scenarios are {[r.scenario.name for r in self.scenarios]}")

    def reload_gaps(self, style: str) -> np.ndarray:
        """Validation loss after reload minus in memory, one per seed, for ``style``."""
        return np.array([row.reload_gap for row in self.reloads if row.style == style])

    def rows_of(self, style: str) -> tuple[ReloadRow, ...]:
        return tuple(row for row in self.reloads if row.style == style)


def reload_without_fsdp(outcome: TrainOutcome, config: TrainConfig, world_size: int) -> ReloadRow:
    """Load rank 0's full state dict into a freshly built model of the same style (no FSDP) and evaluate it on the
    same validation batches the ranks used."""
    state = outcome.state
    model = build_model(outcome.style, seed=outcome.seed + 1, size=config.size, device=DEVICE)
    model.load_state_dict(state)
    val_batches = corpus_batches("val", outcome.seed, 0, world_size, config)
    differs = "to_logits.weight" in state and not torch.equal(state["token_emb.weight"], state["to_logits.weight"])
    return ReloadRow(outcome.style, outcome.seed, outcome.tie_parameters, outcome.train_losses[0],
                     outcome.train_losses[-1], differs, outcome.val_in_memory,
                     evaluate_loss(model, val_batches, config.val_batches), tie_verdict(model))


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else text


_FINISHED: dict[tuple, FSDPReport] = {}  # launches where every rank finished; a failed one is retried


def run_fsdp(world_size: int = 2, config: TrainConfig = REPLAY, timeout_s: float = 240.0) -> FSDPReport:
    """Run every scenario of ``SCENARIOS`` and the Lingua replay on ``world_size`` CPU processes (gloo, FSDP2).

    Args:
        world_size: processes (2 or more: with one rank nothing is sharded).
        config: the replay's training settings (styles, seeds, steps, learning rate, model size).
        timeout_s: the whole launch returns within about this many seconds; unfinished ranks become errors.

    Returns:
        An ``FSDPReport``; when a rank fails, ``ok`` is False, ``errors`` says why and the rows are empty. A launch
        where every rank finished is kept for this process (the notebook, its plot and its audit read one run).
    """
    check_int("world_size", world_size, minimum=2)
    check_type("config", config, TrainConfig, "a TrainConfig")
    check_number("timeout_s", timeout_s, minimum=1.0)
    key = (world_size, config)
    if key not in _FINISHED:
        report = _launch(world_size, config, timeout_s)
        if not report.ok:
            return report
        _FINISHED[key] = report
    return _FINISHED[key]


def _launch(world_size: int, config: TrainConfig, timeout_s: float) -> FSDPReport:
    run = ddp_runner.run_distributed(fsdp_rank, world_size, args=(SCENARIOS, config), timeout_s=timeout_s,
                                     backend=BACKEND)
    if not run.ok:
        errors = {rank: _last_line(text) for rank, text in run.errors.items()}
        return FSDPReport(False, errors, run.backend, world_size, torch.__version__, run.seconds, (), (), config)
    per_rank = [rank.value for rank in run.ranks]
    scenarios = tuple(ScenarioRow(scenario, tuple(value[0][index] for value in per_rank))
                      for index, scenario in enumerate(SCENARIOS))
    with one_cpu_thread():
        reloads = tuple(reload_without_fsdp(outcome, config, world_size) for outcome in per_rank[0][1])
    return FSDPReport(True, {}, run.backend, world_size, torch.__version__, run.seconds, scenarios, reloads, config)


def scenario_lines(report: FSDPReport) -> list[str]:
    """A text table of the scenarios: what each rank stores, whether the gradients meet, whether the tie holds."""
    if not report.ok:
        return [f"rank {rank}: {error}" for rank, error in sorted(report.errors.items())]
    lines = [f"{'scenario':40s} {'outcome':8s} {'Parameters':>10s} {'elements per rank':>18s} "
             f"{'grads meet':>10s} {'tie after step':>14s}"]
    for row in report.scenarios:
        if row.error is not None and row.stage == "wrap":
            lines.append(f"{row.scenario.name:40s} {'error':8s} (fully_shard raised)")
            continue
        elements = " / ".join(str(n) for n in row.elements_per_rank)
        lines.append(f"{row.scenario.name:40s} {row.outcome:8s} {row.tie_parameters:>10d} {elements:>18s} "
                     f"{('-' if row.error else str(row.grads_meet)):>10s} "
                     f"{('-' if row.error else str(row.tie_holds_after_step)):>14s}")
    return lines
