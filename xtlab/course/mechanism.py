"""What a mechanism checker needs besides calling the learner's code: hidden cases, comparison by value and by
gradient, counted calls, and proof that inputs and the global random state were left alone.

A checker runs the learner's code and a reference on :class:`Case` s the notebook never shows (drawn from a fixed
seed, plus the edges), and turns the first difference into a verdict that names the case, says how far off the
answer is and gives the hint for it, without printing the reference's values::

    for case in cases:
        got = call(answer, *case.args)
        problem = compare_values(got, reference(*case.args), name="the output")
        if problem:
            return case_failed(case, problem, "look at ...")
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from xtlab.course.verdict import Verdict


@dataclass(frozen=True)
class Case:
    """One hidden case of a checker.

    Attributes:
        setting: how the case reads in feedback, e.g. ``"p=1.0, depth 12, eval mode"``.
        args: the positional arguments for the learner's code (the checker decides what they are).
        kwargs: keyword arguments, if any.
        edge: True for the edge cases (p = 0 or 1, empty memory, depth 1, float64, ...).
    """

    setting: str
    args: tuple = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    edge: bool = False


def case_failed(case: Case, problem: str, hint: str) -> Verdict:
    """TRY AGAIN naming the hidden case that failed first, what was wrong there, and the hint for it."""
    kind = "edge case" if case.edge else "hidden case"
    return Verdict.make_try_again(f"{kind} ({case.setting}): {problem}", hint)


def seeded_generator(seed: int) -> torch.Generator:
    """A CPU generator of its own, so drawing cases never touches the global random state."""
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator


# --- numbers ---------------------------------------------------------------------------------------------------

def show_number(value: float, other: float | None = None, digits: int = 4) -> str:
    """``value`` with enough significant digits to tell it from ``other`` (a wrong 0.99999 never prints as 1)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        return repr(value)
    value = float(value)
    if other is None or not math.isfinite(value) or not math.isfinite(float(other)):
        return f"{value:.{digits}g}"
    other = float(other)
    for places in range(digits, 18):
        if f"{value:.{places}g}" != f"{other:.{places}g}" or value == other:
            return f"{value:.{places}g}"
    return repr(value)


def compare_values(got: Any, expected: torch.Tensor, name: str = "the output", rtol: float = 1e-6,
                   atol: float = 1e-8) -> str | None:
    """None when ``got`` is a tensor of ``expected``'s shape and dtype within the tolerances, else what differs.

    The message gives the largest absolute and relative difference and where it is, never the reference's values.
    """
    if not isinstance(got, torch.Tensor):
        return f"{name} is a {type(got).__name__}, expected a tensor of shape {tuple(expected.shape)}"
    if tuple(got.shape) != tuple(expected.shape):
        return f"{name} has shape {tuple(got.shape)}, expected {tuple(expected.shape)}"
    if got.dtype != expected.dtype:
        return f"{name} has dtype {got.dtype}, expected {expected.dtype} (keep the input's dtype)"
    got, expected = got.detach().cpu(), expected.detach().cpu()
    if got.is_floating_point():
        if not torch.isfinite(got).all() and torch.isfinite(expected).all():
            return f"{name} holds NaN or inf where every expected value is finite"
        if torch.allclose(got, expected, rtol=rtol, atol=atol):
            return None
        difference = (got - expected).abs()
        index = np.unravel_index(int(difference.argmax()), tuple(got.shape)) if got.dim() else ()
        largest = float(difference.max())
        relative = largest / max(float(expected.abs().max()), 1e-30)
        return (f"{name} is off by up to {largest:.3g} (relative {relative:.3g}, allowed {rtol:g}) at index "
                f"{tuple(int(i) for i in index)}")
    if torch.equal(got, expected):
        return None
    wrong = int((got != expected).sum())
    return f"{name} differs in {wrong} of {got.numel()} entries"


def gradients(output: torch.Tensor, tensors: Sequence[torch.Tensor], weights: torch.Tensor | None = None
              ) -> list[torch.Tensor | None]:
    """d(sum(output * weights)) / d(each tensor), None where no path leads from a tensor to the output."""
    if not isinstance(output, torch.Tensor) or not output.requires_grad:
        return [None for _ in tensors]
    weights = torch.ones_like(output) if weights is None else weights
    found = torch.autograd.grad((output * weights).sum(), list(tensors), allow_unused=True)
    return list(found)


def compare_gradients(got: Sequence[torch.Tensor | None], expected: Sequence[torch.Tensor | None],
                      names: Sequence[str], rtol: float = 1e-6, atol: float = 1e-8) -> str | None:
    """None when every gradient matches (a missing one only where the reference has none too), else the first
    difference, naming the tensor: a detached path shows up here as 'no gradient reached ...'."""
    for name, mine, theirs in zip(names, got, expected, strict=True):
        if theirs is None and mine is None:
            continue
        if mine is None:
            return f"no gradient reached {name} (a detached or bypassed path?)"
        if theirs is None:
            return f"a gradient reached {name}, which must get none (it must not take part in this step)"
        problem = compare_values(mine, theirs, name=f"the gradient of {name}", rtol=rtol, atol=atol)
        if problem:
            return problem
    return None


class CallCounter:
    """Counts the forward calls of named modules while active (forward pre-hooks, removed on exit).

    Use it as ``with CallCounter({"block 0": blocks[0]}) as calls: ...``, then read ``calls.counts["block 0"]``.
    """

    def __init__(self, modules: Mapping[str, nn.Module]):
        self.modules = dict(modules)
        self.counts = dict.fromkeys(self.modules, 0)
        self._handles: list[Any] = []

    def __enter__(self) -> CallCounter:
        for name, module in self.modules.items():
            self._handles.append(module.register_forward_pre_hook(self._counter(name)))
        return self

    def _counter(self, name: str):
        def count(module, args):
            self.counts[name] += 1
        return count

    def __exit__(self, *exc_info: Any) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def called(self) -> list[str]:
        return [name for name, count in self.counts.items() if count]


class Untouched:
    """A snapshot of tensors that must come out of the learner's code unchanged (values and in-place edits)."""

    def __init__(self, tensors: Mapping[str, torch.Tensor]):
        self.tensors = dict(tensors)
        self._copies = {name: t.detach().clone() for name, t in self.tensors.items()}
        self._versions = {name: t._version for name, t in self.tensors.items()}

    def changed(self) -> list[str]:
        """The names whose tensor was modified (in place or in value)."""
        return [name for name, t in self.tensors.items()
                if t._version != self._versions[name] or not torch.equal(t.detach(), self._copies[name])]


def _global_states() -> dict[str, Any]:
    return {"torch": torch.get_rng_state(), "random": random.getstate(), "numpy": np.random.get_state()}


@contextmanager
def global_rng_watch() -> Iterator[list[str]]:
    """Yields a list that, on exit, names every global random generator (torch, random, numpy) the block drew
    from: a mechanism that must draw from a given ``torch.Generator`` leaves it empty."""
    before = _global_states()
    drawn: list[str] = []
    try:
        yield drawn
    finally:
        after = _global_states()
        if not torch.equal(before["torch"], after["torch"]):
            drawn.append("torch's global generator (torch.rand without generator=...)")
        if before["random"] != after["random"]:
            drawn.append("Python's random module")
        if not all(np.array_equal(a, b) if isinstance(a, np.ndarray) else a == b
                   for a, b in zip(before["numpy"], after["numpy"], strict=True)):
            drawn.append("NumPy's global generator")


def names_of(items: Iterable[Any]) -> str:
    """``a, b and c``."""
    items = [str(item) for item in items]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1] if items else "nothing"
