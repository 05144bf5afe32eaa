"""Lab 00's example exercise: the chance that a forward pass runs every block (what the tour panel plots).

The checker runs hidden settings (edges included: p = 0, p = 1, one block, 48 blocks), prints a wrong number with
enough digits to tell it from the right one, and never prints the expected value itself.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from xtlab.course import Case, Exercise, ExerciseSet, Mistake, Verdict, call, case_failed, describe, show_number

CASES = (
    Case("8 blocks, p = 0.1", (8, 0.1)),
    Case("12 blocks, p = 0.25", (12, 0.25)),
    Case("48 blocks, p = 0.05", (48, 0.05)),
    Case("one block, p = 0.3", (1, 0.3), edge=True),
    Case("p = 0: nothing is ever skipped", (6, 0.0), edge=True),
    Case("p = 1: every block is skipped", (3, 1.0), edge=True),
)
_RUNS = "each block runs with probability 1 - p, and the blocks flip their coins independently"


def _near(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def _hint(answer: float, num_blocks: int, p: float) -> str:
    """The hint for the mistake ``answer`` looks like."""
    expected = (1 - p) ** num_blocks
    known = (
        (p**num_blocks, "p ** L is the chance that every block is SKIPPED; a block runs with probability 1 - p"),
        (1 - p, "that is the chance for one block; all L blocks must run"),
        (1 - p * num_blocks, "1 - p * L is a first-order approximation (it even goes below 0); multiply the "
                             "independent (1 - p)s instead"),
        (100 * expected, "that is a percentage; return a probability between 0 and 1"),
    )
    for value, hint in known:
        if _near(answer, value) and not _near(answer, expected):
            return hint
    if round(expected, 2) != expected and _near(answer, round(expected, 2)):
        return "do not round the probability: return it with full precision"
    return _RUNS


def check_chance_every_block_runs(chance_every_block_runs: Callable[[int, float], float]) -> Verdict:
    """``chance_every_block_runs(num_blocks, p)`` must equal ``(1 - p) ** num_blocks`` on every hidden case."""
    for case in CASES:
        num_blocks, p = case.args
        answer = call(chance_every_block_runs, num_blocks, p)
        if isinstance(answer, bool) or not isinstance(answer, (int, float)):
            return case_failed(case, f"chance_every_block_runs({num_blocks}, {p}) returned {describe(answer)}",
                               "return a number (a float) between 0 and 1")
        expected = (1 - p) ** num_blocks
        if not _near(answer, expected):
            off = abs(answer - expected) / max(abs(expected), 1e-12)
            return case_failed(case, f"chance_every_block_runs({num_blocks}, {p}) returned "
                                     f"{show_number(answer, expected)}, off by a relative {off:.2g}",
                               _hint(answer, num_blocks, p))
    return Verdict.make_pass(f"chance_every_block_runs matches (1 - p) ** L on {len(CASES)} hidden settings, "
                             "p = 0 and p = 1 included")


EXERCISES = ExerciseSet(
    Exercise(
        name="chance_every_block_runs",
        prompt="chance_every_block_runs(num_blocks, p): the probability that none of num_blocks blocks is skipped "
               "when each is skipped with probability p, independently",
        checker=check_chance_every_block_runs,
        reference=lambda num_blocks, p: (1 - p) ** num_blocks,
        mistakes=(
            Mistake("chance that every block is skipped", lambda num_blocks, p: p**num_blocks, "SKIPPED"),
            Mistake("chance for one block only", lambda num_blocks, p: 1 - p, "for one block"),
            Mistake("first-order approximation", lambda num_blocks, p: 1 - p * num_blocks, "first-order"),
            Mistake("a percentage", lambda num_blocks, p: 100 * (1 - p) ** num_blocks, "percentage"),
            Mistake("rounded to two decimals", lambda num_blocks, p: round((1 - p) ** num_blocks, 2),
                    "full precision"),
            Mistake("off by a hair (0.99999 shown as 1 would hide it)",
                    lambda num_blocks, p: (1 - p) ** num_blocks * (1 - 1e-7), "off by a relative 1e-07"),
        ),
    ),
)
