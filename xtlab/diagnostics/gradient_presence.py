"""Gradient presence: which parameters (or blocks) received a gradient at each training step, and how large.

"No gradient" (``.grad is None``: the parameter took no part in the backward pass) is kept apart from
"zero gradient" (it took part, but the gradient is exactly zero), because only the first breaks DDP.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import torch
import torch.nn as nn

from xtlab._checks import check_callable, check_int, check_module


class GradientState(IntEnum):
    """What one parameter (or block) got in one step; the int value is the heatmap colour index."""

    NO_GRADIENT = 0
    ZERO_GRADIENT = 1
    NONZERO_GRADIENT = 2


@dataclass(frozen=True)
class GradientPresence:
    """Steps x rows of gradient states and norms, with row labels, ready for a heatmap.

    Attributes:
        labels: one label per row: a parameter name, or a module-path prefix when grouped.
        steps: the step index of each recorded step.
        states: ``states[step][row]``, a :class:`GradientState`.
        norms: ``norms[step][row]``, the L2 norm of the gradient (of all its parameters, when grouped);
            ``nan`` where there was no gradient.
        losses: the value the training step returned at each step (``nan`` when it returned no number).
        members: for each row, the parameter names it covers (one name when not grouped).

    Shape:
        ``states`` and ``norms``: ``(len(steps), len(labels))``.
    """

    labels: tuple[str, ...]
    steps: tuple[int, ...]
    states: tuple[tuple[GradientState, ...], ...]
    norms: tuple[tuple[float, ...], ...]
    losses: tuple[float, ...]
    members: tuple[tuple[str, ...], ...]

    def first(self, count: int) -> GradientPresence:
        """The first ``count`` recorded steps (all rows), e.g. a shorter run's record out of a longer one's."""
        check_int("count", count, minimum=0)
        if count > len(self.steps):
            raise ValueError(f"count must be <= the {len(self.steps)} recorded steps, but got {count}")
        return GradientPresence(self.labels, self.steps[:count], self.states[:count], self.norms[:count],
                                self.losses[:count], self.members)

    def state_matrix(self) -> list[list[int]]:
        """The states as ints, ``[step][row]`` (0 no gradient, 1 zero gradient, 2 non-zero)."""
        return [[int(state) for state in row] for row in self.states]

    def without_gradient(self, step_position: int) -> list[str]:
        """Labels of the rows that got no gradient at the ``step_position``-th recorded step."""
        check_int("step_position", step_position)
        if not -len(self.steps) <= step_position < len(self.steps):
            raise ValueError(f"step_position {step_position} is out of range for {len(self.steps)} recorded steps: "
                             f"step_position must be in [{-len(self.steps)}, {len(self.steps) - 1}]")
        row = self.states[step_position]
        return [label for label, state in zip(self.labels, row, strict=True) if state == GradientState.NO_GRADIENT]

    def fraction_without_gradient(self) -> float:
        """Fraction of (step, row) cells with no gradient; ``nan`` when nothing was recorded."""
        cells = [state for row in self.states for state in row]
        if not cells:
            return math.nan
        return sum(state == GradientState.NO_GRADIENT for state in cells) / len(cells)

    def grouped(self, depth: int) -> GradientPresence:
        """Merge parameter rows into one row per module path of ``depth`` name components.

        ``depth=3`` turns ``attn_layers.layers.3.fn.to_qkv.weight`` into ``attn_layers.layers.3``; a parameter
        with fewer components is grouped under its owning module (or itself, when it sits on the root). A group
        has no gradient when none of its parameters has one, a non-zero gradient when any has, and its norm is
        the L2 norm over its parameters' gradients.
        """
        check_int("depth", depth, minimum=1)
        group_rows: dict[str, list[int]] = {}
        for row, name in enumerate(self.labels):
            parts = name.split(".")
            prefix = ".".join(parts[: min(depth, len(parts) - 1)]) or name
            group_rows.setdefault(prefix, []).append(row)
        states, norms = [], []
        for step_states, step_norms in zip(self.states, self.norms, strict=True):
            states.append(tuple(max(step_states[row] for row in rows) for rows in group_rows.values()))
            norms.append(tuple(_combined_norm([step_norms[row] for row in rows]) for rows in group_rows.values()))
        members = tuple(tuple(name for row in rows for name in self.members[row]) for rows in group_rows.values())
        return GradientPresence(tuple(group_rows), self.steps, tuple(states), tuple(norms), self.losses, members)


def _combined_norm(norms: list[float]) -> float:
    present = [norm for norm in norms if not math.isnan(norm)]
    return math.sqrt(sum(norm * norm for norm in present)) if present else math.nan


class GradientPresenceRecorder:
    """Reads every parameter's ``.grad`` each time :meth:`record` is called (after backward, before zeroing).

    Args:
        model: any ``nn.Module``; its parameters (ties counted once) are the rows, in ``named_parameters`` order.

    Example::

        recorder = GradientPresenceRecorder(model)
        for step in range(10):
            optimizer.zero_grad(set_to_none=True)  # set_to_none, or every parameter looks "present"
            loss = loss_fn(model, batch_fn(step))
            loss.backward()
            recorder.record(step, loss)
        heatmap_data = recorder.result().grouped(depth=3)
    """

    def __init__(self, model: nn.Module) -> None:
        check_module("model", model)
        self._names = tuple(name for name, _ in model.named_parameters())
        self._parameters = tuple(parameter for _, parameter in model.named_parameters())
        self._steps: list[int] = []
        self._states: list[tuple[GradientState, ...]] = []
        self._norms: list[tuple[float, ...]] = []
        self._losses: list[float] = []

    def record(self, step: int | None = None, loss: Any = None) -> None:
        """Record the current gradients as one step (numbered ``step``, or the next number when ``None``)."""
        if step is None:
            step = len(self._steps)
        check_int("step", step, minimum=0)
        grads = [parameter.grad for parameter in self._parameters]
        present = [grad for grad in grads if grad is not None]
        measured = iter(_gradient_norms(present))
        norms = [next(measured) if grad is not None else math.nan for grad in grads]
        states = [GradientState.NO_GRADIENT if grad is None
                  else GradientState.NONZERO_GRADIENT if norm > 0 else GradientState.ZERO_GRADIENT
                  for grad, norm in zip(grads, norms, strict=True)]
        self._steps.append(step)
        self._states.append(tuple(states))
        self._norms.append(tuple(norms))
        self._losses.append(_as_float(loss))

    def result(self) -> GradientPresence:
        """Everything recorded so far, one row per parameter."""
        return GradientPresence(
            labels=self._names,
            steps=tuple(self._steps),
            states=tuple(self._states),
            norms=tuple(self._norms),
            losses=tuple(self._losses),
            members=tuple((name,) for name in self._names),
        )


def _gradient_norms(grads: list[torch.Tensor]) -> list[float]:
    """Each gradient's L2 norm, in float32: one batched kernel and one device sync when the gradients are
    dense and on one device (the same values as ``grad.norm()`` one by one, which the rest falls back to)."""
    grads = [grad.detach().float() for grad in grads]
    if not grads:
        return []
    if all(grad.layout == torch.strided for grad in grads) and len({grad.device for grad in grads}) == 1:
        return torch.stack(torch._foreach_norm(grads)).tolist()
    return [float(grad.norm()) for grad in grads]


def _as_float(loss: Any) -> float:
    if isinstance(loss, torch.Tensor) and loss.numel() == 1:
        return float(loss.detach())
    if isinstance(loss, (int, float)) and not isinstance(loss, bool):
        return float(loss)
    return math.nan


def record_gradient_presence(
    model: nn.Module,
    train_step: Callable[[int], Any],
    steps: int,
    *,
    depth: int | None = None,
) -> GradientPresence:
    """Run ``train_step`` ``steps`` times and record which parameters got a gradient at each step.

    Before each step every ``.grad`` is set to ``None``, so a parameter the step's backward pass does not reach
    shows as "no gradient" rather than keeping last step's value.

    Args:
        model: any ``nn.Module``.
        train_step: ``train_step(step)`` runs forward, backward and (optionally) the optimizer step; what it
            returns (e.g. the loss) is stored in ``losses``.
        steps: how many steps to run (>= 1).
        depth: when given, group rows into module paths of this many name components (see
            :meth:`GradientPresence.grouped`); ``None`` keeps one row per parameter.

    Returns:
        A :class:`GradientPresence`, ``steps`` x rows.
    """
    check_module("model", model)
    check_callable("train_step", train_step)
    check_int("steps", steps, minimum=1)
    if depth is not None:
        check_int("depth", depth, minimum=1)
    recorder = GradientPresenceRecorder(model)
    parameters = list(model.parameters())  # walked once: model.zero_grad walks every module at every step
    for step in range(steps):
        for parameter in parameters:
            parameter.grad = None
        loss = train_step(step)
        recorder.record(step, loss)
    presence = recorder.result()
    return presence.grouped(depth) if depth is not None else presence
