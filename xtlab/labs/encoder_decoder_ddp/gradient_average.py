"""What ``find_unused_parameters=True`` does to a parameter used on some ranks only: DDP averages its gradient
with the zeros of the ranks that skipped it, so it arrives scaled by (ranks that used it) / world_size."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from xtlab._checks import check_type
from xtlab.labs.encoder_decoder_ddp.launch import ScenarioReport


@dataclass(frozen=True)
class GradientRow:
    """One parameter after the first backward of a run recorded with ``record_gradients``.

    Attributes:
        name: the parameter. used_on: the ranks whose own (no-DDP) backward gave it a gradient.
        ratio: ``|DDP gradient| / |mean of the local gradients of the ranks that used it|``: 1 for a parameter
            every rank used, ``len(used_on) / world_size`` when the others averaged in zeros (nan when unused).
        max_error: ``max |DDP gradient - sum of local gradients / world_size|`` (0 when no rank used it and DDP
            left it without gradient; inf when DDP and the local runs disagree on having a gradient at all).
        ddp_has_grad: whether DDP left a gradient on it (on every rank alike).
    """

    name: str
    used_on: tuple[int, ...]
    ratio: float
    max_error: float
    ddp_has_grad: bool


@dataclass(frozen=True)
class GradientAverage:
    """Every parameter's averaged gradient against the local ones.

    Attributes:
        world_size: the ranks. rows: one :class:`GradientRow` per parameter.
        ranks_agree: every rank holds the same DDP gradients (bit for bit).
    """

    world_size: int
    rows: tuple[GradientRow, ...]
    ranks_agree: bool

    def used_on_one_rank(self) -> tuple[GradientRow, ...]:
        return tuple(row for row in self.rows if len(row.used_on) == 1)

    def used_on_every_rank(self) -> tuple[GradientRow, ...]:
        return tuple(row for row in self.rows if len(row.used_on) == self.world_size)

    def used_on_no_rank(self) -> tuple[GradientRow, ...]:
        return tuple(row for row in self.rows if not row.used_on)

    @staticmethod
    def _ratio_range(rows) -> tuple[float, float]:
        ratios = [row.ratio for row in rows]
        return (min(ratios), max(ratios)) if ratios else (float("nan"), float("nan"))

    @property
    def one_rank_ratio(self) -> tuple[float, float]:
        """(min, max) of ``|DDP gradient| / |the using rank's own gradient|`` over the parameters used on one rank."""
        return self._ratio_range(self.used_on_one_rank())

    @property
    def every_rank_ratio(self) -> tuple[float, float]:
        """(min, max) of ``|DDP gradient| / |mean local gradient|`` over the parameters every rank used."""
        return self._ratio_range(self.used_on_every_rank())

    @property
    def max_error(self) -> float:
        """The largest ``|DDP - sum(local) / world_size|`` over every parameter some rank used."""
        return max((row.max_error for row in self.rows if row.used_on), default=0.0)


def _local_sum(local: list[dict], name: str) -> torch.Tensor | None:
    present = [grads[name] for grads in local if grads.get(name) is not None]
    return torch.stack(present).sum(0) if present else None


def compare_gradient_average(report: ScenarioReport) -> GradientAverage:
    """Compare, parameter by parameter, the gradient DDP left after the first backward with the local gradients
    each rank computed without DDP on the same batch and skips.

    Raises:
        TypeError: ``report`` is not a :class:`ScenarioReport`.
        ValueError: the run did not train on every rank, or was not recorded with ``record_gradients=True``.
    """
    check_type("report", report, ScenarioReport, "a ScenarioReport")
    if not report.ok:
        raise ValueError(f"run {report.name!r} did not train on every rank ({report.outcome}): no gradients")
    if not report.scenario.record_gradients:
        raise ValueError(f"run {report.name!r} was made without record_gradients=True")
    ddp = [outcome.grads for outcome in report.outcomes]
    local = [outcome.local_grads for outcome in report.outcomes]
    world_size = len(ddp)
    agree = all(ddp[0].keys() == grads.keys() and all(
        (a is None and b is None) or (a is not None and b is not None and torch.equal(a, b))
        for a, b in zip(ddp[0].values(), grads.values(), strict=True)) for grads in ddp[1:])
    rows = []
    for name, grad in ddp[0].items():
        used_on = tuple(rank for rank, grads in enumerate(local) if grads.get(name) is not None)
        total = _local_sum(local, name)
        if total is None or grad is None:
            error = 0.0 if total is None and grad is None else float("inf")
            ratio = float("nan")
        else:
            error = float((grad - total / world_size).abs().max())
            norm = float((total / len(used_on)).norm())
            ratio = float(grad.norm()) / norm if norm > 0 else float("nan")
        rows.append(GradientRow(name, used_on, ratio, error, grad is not None))
    return GradientAverage(world_size, tuple(rows), agree)
