"""Lab 00's example exercise: the chance that a forward pass runs every block (what the tour panel plots)."""

from __future__ import annotations

import math
from collections.abc import Callable

from xtlab.course import Exercise, ExerciseSet, Mistake, Verdict, call, describe

_CASES = ((1, 0.1), (8, 0.1), (12, 0.25), (4, 0.0), (24, 0.5))


def check_chance_every_block_runs(chance_every_block_runs: Callable[[int, float], float]) -> Verdict:
    """``chance_every_block_runs(num_blocks, p)`` must equal ``(1 - p) ** num_blocks``."""
    for num_blocks, p in _CASES:
        answer = call(chance_every_block_runs, num_blocks, p)
        expected = (1 - p) ** num_blocks
        if isinstance(answer, bool) or not isinstance(answer, (int, float)):
            return Verdict.make_try_again(f"chance_every_block_runs({num_blocks}, {p}) returned {describe(answer)}",
                                     "return a number between 0 and 1")
        if not math.isclose(answer, expected, rel_tol=1e-9, abs_tol=1e-12):
            hint = "each block runs with probability 1 - p, and the blocks flip their coins independently"
            if math.isclose(answer, p**num_blocks, rel_tol=1e-9, abs_tol=1e-12):
                hint = "p ** L is the chance that every block is SKIPPED; a block runs with probability 1 - p"
            elif math.isclose(answer, 1 - p, rel_tol=1e-9):
                hint = "that is the chance for one block; all L blocks must run"
            return Verdict.make_try_again(f"chance_every_block_runs({num_blocks}, {p}) returned {answer:.4g}, expected "
                                     f"{expected:.4g}", hint)
    return Verdict.make_pass(f"chance_every_block_runs matches (1 - p) ** L on {len(_CASES)} settings")


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
        ),
    ),
)
