"""Lab 03 exercises: write the memory position vector; predict which configurations give equal outputs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from xtlab.course import Exercise, ExerciseSet, Mistake, Verdict, call, describe
from xtlab.course.answers import mapping_problem
from xtlab.labs.xl_rotary.equality import EXACT_TOLERANCE, empty_memories, segmented_vs_full
from xtlab.model.rotary import memory_positions

POSITION_CASES = ((2, 3), (0, 4), (3, 1), (5, 5))


def _as_int_list(given: Any) -> list[int] | None:
    """``given`` as a list of Python ints, or None when it is not a sequence of integers."""
    if isinstance(given, (torch.Tensor, np.ndarray)):
        if given.dtype == torch.bool or given.dtype == np.bool_ or given.ndim != 1:
            return None
        given = given.tolist()
    if not isinstance(given, (list, tuple)):
        return None
    if not all(isinstance(p, (int, np.integer)) and not isinstance(p, (bool, np.bool_)) for p in given):
        return None
    return [int(p) for p in given]


def check_memory_positions(positions_with_memory: Callable[[int, int], list[int]]) -> Verdict:
    """Check ``positions_with_memory(M, T)``: the continuous key positions for M memories and T current tokens."""
    for num_mems, seq_len in POSITION_CASES:
        expected = memory_positions(num_mems, seq_len).tolist()
        given = call(positions_with_memory, num_mems, seq_len)
        answer = _as_int_list(given)
        if answer is None:
            return Verdict.try_again(f"positions_with_memory({num_mems}, {seq_len}) returned {describe(given)}",
                                     "return a list of ints (or an integer tensor), one position per key")
        if answer == expected:
            continue
        newest_first = list(range(-1, -num_mems - 1, -1)) + list(range(seq_len))
        restarted = memory_positions(num_mems, seq_len, "restart").tolist()
        where = f"for M={num_mems}, T={seq_len} you gave {answer}, expected {expected}"
        if answer == newest_first:
            hint = ("the memories are listed newest-first; keys are stored oldest to newest, so the oldest memory "
                    "slot sits at -M and the list grows by 1 each step")
        elif answer == restarted:
            hint = "the memory positions restart at 0: that is the bug, memories would overlay the current tokens"
        elif len(answer) != num_mems + seq_len:
            hint = f"there are M + T = {num_mems + seq_len} keys, one position each"
        elif answer == [p - 1 for p in expected] or answer == [p + 1 for p in expected]:
            hint = "off by one: the current tokens start at exactly 0 and the newest memory sits at -1"
        else:
            hint = "the current tokens start at 0 and the M memories come just before them"
        return Verdict.try_again(f"{where}.", hint)
    return Verdict.passed(f"positions match arange(-M, T) for (M, T) in {list(POSITION_CASES)}.")


EQUALITY_QUESTIONS = {
    "a": "mems=None vs 4 all-zero memory slots per layer, empty-memory mask on",
    "b": "mems=None vs 4 all-zero memory slots per layer, mask off (mask_empty_mems=False)",
    "c": "4 segments of 8 tokens with max_mem_len=64 vs one full pass of 32 tokens",
    "d": "4 segments of 8 tokens with max_mem_len=8 vs one full pass of 32 tokens",
    "e": "as c, but with mem_positions='restart'",
}

WHY = {
    "a": "masked zero slots get zero weight, so they change nothing",
    "b": "unmasked zero keys score 0 and take softmax weight from the real keys",
    "c": "the memory holds the whole history at the right positions: the same computation, segmented",
    "d": "a memory of 8 forgets older tokens, which the full pass still sees (a sliding window)",
    "e": "memory keys get positions 0..M-1 and overlay the current tokens, so rotary sees wrong distances",
}


def equality_outcomes() -> dict[str, tuple[bool, float]]:
    """For each question: (outputs equal to float64 rounding, largest |difference|), computed live on CPU."""
    empty = empty_memories(num_mems=4, seq_len=8)
    outcomes = {label: (diff < EXACT_TOLERANCE, diff)
                for label, diff in (("a", empty.max_abs_diff["mask on"]), ("b", empty.max_abs_diff["mask off"]))}
    for label, config, mem_len in (("c", "correct", 64), ("d", "correct", 8), ("e", "restarted positions", 64)):
        proof = segmented_vs_full(config, segment_len=8, num_segments=4, max_mem_len=mem_len)
        outcomes[label] = (proof.equal, proof.worst)
    return outcomes


def check_equality_predictions(equality_predictions: Callable[[], dict[str, bool]]) -> Verdict:
    """Check ``equality_predictions()``: a prediction (True = equal outputs) for every question in
    ``EQUALITY_QUESTIONS``."""
    predictions = call(equality_predictions)
    problem = mapping_problem(predictions, EQUALITY_QUESTIONS, (True, False), "equality_predictions()")
    if problem is not None:
        return problem
    wrong = []
    for label, (equal, diff) in equality_outcomes().items():
        if predictions[label] != equal:
            measured = "equal" if equal else f"different (max |diff| {diff:.2g})"
            wrong.append(f"{label}: measured {measured}, because {WHY[label]}")
    if wrong:
        return Verdict.try_again(f"{len(wrong)} of {len(EQUALITY_QUESTIONS)} predictions differ from the "
                                 "measurement — " + "; ".join(wrong), "each reason above is computed live")
    return Verdict.passed(f"all {len(EQUALITY_QUESTIONS)} predictions match the live measurement.")


_RIGHT_PREDICTIONS = {"a": True, "b": False, "c": True, "d": False, "e": False}

EXERCISES = ExerciseSet(
    Exercise(
        name="positions_with_memory",
        prompt="positions_with_memory(M, T): the rotary position of each of the M + T keys, oldest memory first, "
               "so that the current tokens sit at 0 .. T-1",
        checker=check_memory_positions,
        reference=lambda M, T: list(range(-M, T)),
        mistakes=(
            Mistake("memories restart at 0", lambda M, T: list(range(M)) + list(range(T)), "restart at 0"),
            Mistake("memories listed newest-first",
                    lambda M, T: list(range(-1, -M - 1, -1)) + list(range(T)), "newest-first"),
            Mistake("off by one", lambda M, T: list(range(-M - 1, T - 1)), "off by one"),
            Mistake("positions as strings", lambda M, T: [str(p) for p in range(-M, T)], "list of ints"),
        ),
    ),
    Exercise(
        name="equality_predictions",
        prompt="equality_predictions(): a dict {'a': ..., 'e': ...} with True where the two configurations of "
               "EQUALITY_QUESTIONS give equal logits (to float64 rounding), False where they differ",
        checker=check_equality_predictions,
        reference=lambda: dict(_RIGHT_PREDICTIONS),
        mistakes=(
            Mistake("thinks unmasked zero memories are harmless",
                    lambda: {**_RIGHT_PREDICTIONS, "b": True}, "unmasked zero keys"),
            Mistake("thinks a short memory sees everything",
                    lambda: {**_RIGHT_PREDICTIONS, "d": True}, "forgets older tokens"),
            Mistake("strings instead of booleans", lambda: {k: str(v) for k, v in _RIGHT_PREDICTIONS.items()},
                    "True or False"),
        ),
    ),
)
