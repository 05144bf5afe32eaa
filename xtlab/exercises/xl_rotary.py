"""Lab 03 exercises: write the memory position vector; predict which configurations give equal outputs."""

from __future__ import annotations

from collections.abc import Callable

from xtlab.exercises.verdict import Verdict, report
from xtlab.experiments.xl_rotary_equality import EXACT_TOLERANCE, empty_memories, segmented_vs_full
from xtlab.model.rotary import memory_positions

POSITION_CASES = ((2, 3), (0, 4), (3, 1), (5, 5))


def check_memory_positions(positions_fn: Callable[[int, int], list[int]]) -> Verdict:
    """Check ``positions_fn(M, T)`` returns the continuous key positions for M memories and T current tokens."""
    if not callable(positions_fn):
        return report(Verdict(False, f"pass a function (M, T) -> list of ints, but got {type(positions_fn).__name__}"))
    for num_mems, seq_len in POSITION_CASES:
        expected = memory_positions(num_mems, seq_len).tolist()
        try:
            answer = [int(p) for p in positions_fn(num_mems, seq_len)]
        except Exception as err:  # a learner's function may fail in any way: say how
            return report(Verdict(False, f"positions_fn({num_mems}, {seq_len}) raised {type(err).__name__}: {err}"))
        if answer == expected:
            continue
        newest_first = list(range(-1, -num_mems - 1, -1)) + list(range(seq_len))
        restarted = memory_positions(num_mems, seq_len, "restart").tolist()
        where = f"for M={num_mems}, T={seq_len} you gave {answer}, expected {expected}"
        if answer == newest_first:
            hint = ("the memories are listed newest-first, as in the widely read write-up; keys are stored "
                    "oldest to newest, so the oldest memory slot sits at -M and the list grows by 1 each step")
        elif answer == restarted:
            hint = "the memory positions restart at 0: that is the bug, memories would overlay the current tokens"
        elif len(answer) != num_mems + seq_len:
            hint = f"there are M + T = {num_mems + seq_len} keys, one position each"
        else:
            hint = "the current tokens start at 0 and the M memories come just before them"
        return report(Verdict(False, f"{where}: {hint}."))
    return report(Verdict(True, f"positions match arange(-M, T) for (M, T) in {list(POSITION_CASES)}."))


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


def check_equality_predictions(predictions: dict[str, bool]) -> Verdict:
    """Check a prediction (True = equal outputs) for every question in ``EQUALITY_QUESTIONS``."""
    if not isinstance(predictions, dict):
        return report(Verdict(False, f"predictions must be a dict like {{'a': True, ...}}, but got "
                                     f"{type(predictions).__name__}"))
    missing = sorted(set(EQUALITY_QUESTIONS) - set(predictions))
    unknown = sorted(set(predictions) - set(EQUALITY_QUESTIONS))
    if missing or unknown:
        return report(Verdict(False, f"answer each of {sorted(EQUALITY_QUESTIONS)} exactly once: missing {missing}, "
                                     f"unknown {unknown}"))
    not_bool = sorted(k for k, v in predictions.items() if not isinstance(v, bool))
    if not_bool:
        return report(Verdict(False, f"predictions must be True (equal) or False (different); check {not_bool}"))
    wrong = []
    for label, (equal, diff) in equality_outcomes().items():
        if predictions[label] != equal:
            measured = "equal" if equal else f"different (max |diff| {diff:.2g})"
            wrong.append(f"{label}: measured {measured}, because {WHY[label]}")
    if wrong:
        return report(Verdict(False, f"{len(wrong)} of {len(EQUALITY_QUESTIONS)} predictions differ from the "
                                     "measurement — " + "; ".join(wrong)))
    return report(Verdict(True, f"all {len(EQUALITY_QUESTIONS)} predictions match the live measurement."))
