"""Lab 03 exercises: the segmented pass (checker in ``segmented_exercise``) and the memory mask. Each answer is
judged by the invariant: segments with memories give the logits of one full causal pass (or of the library's own
segmented pass where the memory is shorter than the history)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from xtlab.course import Exercise, ExerciseSet, Mistake, Verdict, call, describe
from xtlab.labs.xl_rotary.memory_masks import MASK_ROWS, mask_rows_gap, slot_mask
from xtlab.labs.xl_rotary.models import EXACT_TOLERANCE, shown_diff
from xtlab.labs.xl_rotary.segmented_exercise import (
    check_segmented_pass,
    keep_newest,
    mistaken_segmented_pass,
    solution_segmented_pass,
)


class _BadAnswer(Exception):
    def __init__(self, verdict: Verdict):
        super().__init__(verdict.checked)
        self.verdict = verdict


def _checked_mask(memory_mask: Callable[[Tensor], Tensor], seen: list[Tensor]) -> Callable[[Tensor], Tensor]:
    def run(mem: Tensor) -> Tensor:
        given = call(memory_mask, mem)
        b, m = mem.shape[:2]
        if not isinstance(given, Tensor) or given.dtype != torch.bool or tuple(given.shape) != (b, m):
            shape = tuple(given.shape) if isinstance(given, Tensor) else None
            raise _BadAnswer(Verdict.make_try_again(
                f"memory_mask(mem) with mem of shape {tuple(mem.shape)} returned {describe(given)}"
                + (f" of shape {shape}" if shape is not None else ""),
                f"return a bool tensor of shape (b, M) = {(b, m)}: one flag per slot, reduced over the features"))
        seen.append(given.clone())
        return given
    return run


def check_memory_mask(memory_mask: Callable[[Tensor], Tensor]) -> Verdict:
    """``memory_mask(mem)``: (b, M) bool, True where a slot may be attended. Judged on a batch of three rows (fresh,
    continuing, half-filled buffer), each against its own full pass."""
    seen: list[Tensor] = []
    try:
        gaps = mask_rows_gap(_checked_mask(memory_mask, seen))
    except _BadAnswer as bad:
        return bad.verdict
    wrong = [row for row, gap in gaps.items() if gap >= EXACT_TOLERANCE]
    if not wrong:
        return Verdict.make_pass(f"each row matches its own full pass ({'; '.join(MASK_ROWS)}).")
    measured = "; ".join(f"{row}: max |diff| {shown_diff(gaps[row])}" for row in wrong)
    masks = torch.cat(seen)
    if bool(masks.all()) or not bool(masks.any()):
        hint = ("your mask is one flag for the whole tensor (like torch.any(mem)): with one fresh row in the batch "
                "the zero slots are attended; decide per slot")
    elif MASK_ROWS[1] in wrong:
        hint = "the real memory slots are hidden: is the mask inverted? True means the slot may be attended"
    else:
        hint = "decide per slot, not per row: a half-filled buffer has zero slots and real slots side by side"
    return Verdict.make_try_again(f"rows that differ from their full pass: {measured}", hint)


EXERCISES = ExerciseSet(
    Exercise(
        name="segmented_pass",
        prompt="segmented_pass(run_segment, tokens, segment_len, max_mem_len): run tokens (b, n) segment by segment "
               "with run_segment(segment, mems, positions) -> (logits, hiddens), keep every layer's memory yourself "
               "(the last max_mem_len positions of [its memory ; its normed states], detached; none at 0), number "
               "the M + T keys, and return every segment's logits concatenated, (b, n, num_tokens)",
        checker=check_segmented_pass,
        reference=solution_segmented_pass,
        mistakes=(
            Mistake("memories numbered from 0 on top of the current tokens",
                    mistaken_segmented_pass(keep_newest, positions="restart"), "overlay"),
            Mistake("keeps the first max_mem_len instead of the last",
                    mistaken_segmented_pass(lambda both, L: both[:, :L]), "keep the newest"),
            Mistake("[:, -max_mem_len:], which keeps everything at 0", mistaken_segmented_pass(), "-0 == 0"),
            Mistake("no detach", mistaken_segmented_pass(keep_newest, detach=False), "detach the memory"),
            Mistake("normalises a recorded memory twice", mistaken_segmented_pass(keep_newest, stage="twice"),
                    "normalised twice"),
            Mistake("stores the residual stream, which attention uses as if normed",
                    mistaken_segmented_pass(keep_newest, stage="residual"), "different stages"),
        ),
    ),
    Exercise(
        name="memory_mask",
        prompt="memory_mask(mem): for mem of shape (b, M, dim), a bool tensor (b, M) that is True where a slot "
               "holds something and False where the slot is all zero (an empty slot)",
        checker=check_memory_mask,
        reference=slot_mask,
        mistakes=(
            Mistake("one flag for the whole tensor (the article's torch.any(mem))",
                    lambda mem: torch.any(mem).expand(mem.shape[:2]), "whole tensor"),
            Mistake("inverted: True for empty slots", lambda mem: mem.abs().amax(dim=-1) == 0, "inverted"),
            Mistake("one flag per row", lambda mem: (mem.abs().amax(dim=(1, 2)) > 0)[:, None].expand(mem.shape[:2]),
                    "per slot, not per row"),
            Mistake("not reduced over the features", lambda mem: mem != 0, "reduced over the features"),
        ),
    ),
)
