"""Lab 01 exercises: write a block with layer dropout, read skipped blocks off a presence matrix, and predict how
many steps run every block."""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import numpy as np
import torch

from xtlab.course import Exercise, ExerciseSet, Mistake, Verdict, call, describe
from xtlab.labs.layer_dropout.block_exercise import check_layer_dropout_block

_LABELS = [f"attn_layers.layers.{i}" for i in range(4)]
# rows are steps, columns are blocks; True = the block got a gradient at that step
_PRESENT = np.array([
    [True, False, True, True],
    [True, True, True, True],
    [False, False, True, False],
    [True, True, False, True],
    [False, False, False, False],
])


def _skipped(present: np.ndarray, labels: list[str], step: int) -> list[str]:
    return [label for label, got in zip(labels, present[step], strict=True) if not got]


def _diagnose_skipped(answer, present: np.ndarray, labels: list[str], step: int) -> str | None:
    """None when ``answer`` is right, else what to fix."""
    call = f"skipped_blocks_at(present, labels, t={step})"
    if not isinstance(answer, (list, tuple)):
        return f"{call} returned {describe(answer)}; return a list of block names such as {labels[0]!r}"
    if any(not isinstance(item, str) for item in answer):
        if all(isinstance(item, (int, np.integer)) for item in answer):
            return (f"{call} returned column indices {list(answer)}; return the names: labels[j] for each "
                    "skipped column j")
        return f"{call} returned {list(answer)!r}; every item must be a block name (a str from labels)"
    if len(set(answer)) != len(answer):
        return f"{call} returned {list(answer)} with a name listed twice; list each skipped block once"
    expected = _skipped(present, labels, step)
    if sorted(answer) == sorted(expected):
        return None
    got_gradient = [label for label in labels if label not in expected]
    if sorted(answer) == sorted(got_gradient):
        return (f"{call} returned the blocks that DID get a gradient; a skipped block is one whose entry is "
                "False (no gradient)")
    if step < present.shape[1] and sorted(answer) == sorted(_column_answer(present, labels, step)):
        return (f"{call}: rows are steps and columns are blocks, so step t is the row present[t], "
                "not the column present[:, t]")
    return f"{call} returned {list(answer)}, but the blocks with no gradient at step {step} are {expected}"


def _column_answer(present: np.ndarray, labels: list[str], step: int) -> list[str]:
    return [labels[row] for row in range(min(len(labels), present.shape[0])) if not present[row, step]]


def check_skipped_blocks_at(skipped_blocks_at: Callable) -> Verdict:
    """Check ``skipped_blocks_at(present, labels, t) -> list[str]`` on several presence matrices.

    ``present`` is a (steps, blocks) bool array (True: the block got a gradient), ``labels`` the block names.
    """
    cases = [(_PRESENT, _LABELS, step) for step in range(len(_PRESENT))]
    transposed = _PRESENT[:4].T.copy()  # a square matrix whose rows and columns differ
    cases += [(transposed, _LABELS, step) for step in range(4)]
    for present, labels, step in cases:
        answer = call(skipped_blocks_at, present, list(labels), step)
        problem = _diagnose_skipped(answer, present, labels, step)
        if problem is not None:
            return Verdict.make_try_again(problem, "a block was skipped at step t when present[t, j] is False")
    return Verdict.make_pass(f"skipped_blocks_at is right on {len(cases)} steps, including a step with no "
                          "skipped block and one where every block was skipped.")


_EXPECTATION_CASES = ((8, 0.1, 60), (1, 0.5, 10), (24, 0.2, 1000), (4, 0.0, 50), (12, 0.05, 200))


def _expected_steps(num_blocks: int, p: float, steps: int) -> float:
    return steps * (1.0 - p) ** num_blocks


def _diagnose_expectation(answer, num_blocks: int, p: float, steps: int) -> str | None:
    call = f"expected_all_blocks_steps(num_blocks={num_blocks}, p={p}, steps={steps})"
    if isinstance(answer, bool) or not isinstance(answer, (int, float, np.floating, np.integer)):
        return f"{call} returned {type(answer).__name__}; return a number (an expected count of steps)"
    answer = float(answer)
    expected = _expected_steps(num_blocks, p, steps)
    if math.isclose(answer, expected, rel_tol=1e-6, abs_tol=1e-9):
        return None
    hints = (
        ((1.0 - p) ** num_blocks, "that is the probability for ONE step; multiply by the number of steps"),
        (steps * p**num_blocks, "p ** L is the chance that EVERY block is skipped; a block runs with 1 - p"),
        (steps * (1.0 - p * num_blocks), "1 - p * L is only a first-order approximation (it can even go negative); "
                                         "blocks are skipped independently, so multiply their (1 - p)s"),
        (steps * (1.0 - p) * num_blocks, "(1 - p) * L multiplies by L; independent blocks give (1 - p) ** L"),
        (steps * (1.0 - (1.0 - p) ** num_blocks), "that counts steps with at least one skip; you want none"),
    )
    for value, hint in hints:
        if math.isclose(answer, value, rel_tol=1e-6, abs_tol=1e-9):
            return f"{call} returned {answer:.4g}: {hint}."
    return f"{call} returned {answer:.4g}, but the expected count is {expected:.4g}"


def check_expected_all_blocks_steps(expected_all_blocks_steps: Callable) -> Verdict:
    """Check ``expected_all_blocks_steps(num_blocks, p, steps) -> float`` against ``steps * (1 - p) ** L``."""
    for num_blocks, p, steps in _EXPECTATION_CASES:
        answer = call(expected_all_blocks_steps, num_blocks, p, steps)
        problem = _diagnose_expectation(answer, num_blocks, p, steps)
        if problem is not None:
            return Verdict.make_try_again(
                problem, "each block runs with probability 1 - p, independently of the others")
    return Verdict.make_pass(f"expected_all_blocks_steps matches steps * (1 - p) ** L on {len(_EXPECTATION_CASES)} "
                          "settings, from 1 to 24 blocks.")


def _skipped_blocks_reference(present, labels, t):
    return [label for label, got_gradient in zip(labels, present[t], strict=True) if not got_gradient]


def _expected_all_blocks_reference(num_blocks, p, steps):
    return steps * (1 - p) ** num_blocks


def _block_reference(block, x, p, training, generator):
    if training and torch.rand(1, generator=generator) < p:
        return x  # skipped: the block does not run, so its parameters get no gradient
    return x + block.fn(block.norm(x))


def _skips_in_eval_too(block, x, p, training, generator):
    if torch.rand(1, generator=generator) < p:
        return x
    return x + block.fn(block.norm(x))


def _skips_with_probability_one_minus_p(block, x, p, training, generator):
    if training and torch.rand(1, generator=generator) >= p:
        return x
    return x + block.fn(block.norm(x))


def _multiplies_by_a_mask(block, x, p, training, generator):
    keep = float(torch.rand(1, generator=generator) >= p) if training else 1.0
    return x + keep * block.fn(block.norm(x))


def _rescales_like_dropout(block, x, p, training, generator):
    if training and torch.rand(1, generator=generator) < p:
        return x
    return x + block.fn(block.norm(x)) / (1 - p)


def _returns_zeros(block, x, p, training, generator):
    if training and torch.rand(1, generator=generator) < p:
        return torch.zeros_like(x)
    return x + block.fn(block.norm(x))


def _forgets_the_residual(block, x, p, training, generator):
    if training and torch.rand(1, generator=generator) < p:
        return x
    return block.fn(block.norm(x))


def _draws_with_python_random(block, x, p, training, generator):
    if training and random.random() < p:  # what x-transformers does; not the generator given
        return x
    return x + block.fn(block.norm(x))


EXERCISES = ExerciseSet(
    Exercise(
        name="layer_dropout_block",
        prompt="layer_dropout_block(block, x, p, training, generator): in training, draw u = torch.rand(1, "
               "generator=generator) and return x unchanged (without running the block) when u < p; otherwise, and "
               "always in eval mode, return x + block.fn(block.norm(x))",
        checker=check_layer_dropout_block,
        reference=_block_reference,
        mistakes=(
            Mistake("skips in eval mode too", _skips_in_eval_too, "eval mode"),
            Mistake("skips with probability 1 - p", _skips_with_probability_one_minus_p, "u >= p"),
            Mistake("multiplies the branch by a 0/1 mask", _multiplies_by_a_mask, "multiplied by 0"),
            Mistake("rescales the branch by 1 / (1 - p)", _rescales_like_dropout, "does not rescale"),
            Mistake("returns zeros for a skipped block", _returns_zeros, "identity"),
            Mistake("forgets the residual stream", _forgets_the_residual, "without adding the residual"),
            Mistake("draws with Python's random", _draws_with_python_random, "generator you were given"),
        ),
    ),
    Exercise(
        name="skipped_blocks_at",
        prompt="skipped_blocks_at(present, labels, t): the names (from labels) of the blocks with no gradient at "
               "step t, where present[t, j] is True when block j got a gradient at step t",
        checker=check_skipped_blocks_at,
        reference=_skipped_blocks_reference,
        mistakes=(
            Mistake("lists the blocks that did get a gradient",
                    lambda present, labels, t: [lab for lab, got in zip(labels, present[t], strict=True) if got],
                    "DID get"),
            Mistake("reads a column instead of a row",
                    lambda present, labels, t: [labels[r] for r in range(min(len(labels), present.shape[0]))
                                                if not present[r, t]], "not the column"),
            Mistake("returns column indices instead of names",
                    lambda present, labels, t: [j for j, got in enumerate(present[t]) if not got], "indices"),
        ),
    ),
    Exercise(
        name="expected_all_blocks_steps",
        prompt="expected_all_blocks_steps(num_blocks, p, steps): the expected number of steps, out of steps, in "
               "which none of num_blocks blocks is skipped when each is skipped with probability p",
        checker=check_expected_all_blocks_steps,
        reference=_expected_all_blocks_reference,
        mistakes=(
            Mistake("forgets to multiply by the number of steps", lambda L, p, steps: (1 - p) ** L, "for ONE step"),
            Mistake("first-order approximation", lambda L, p, steps: steps * (1 - p * L), "first-order"),
            Mistake("probability that every block is skipped", lambda L, p, steps: steps * p**L, "EVERY block"),
        ),
    ),
)
