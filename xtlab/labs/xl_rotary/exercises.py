"""Lab 03 exercises: the memory positions, the memory mask for empty slots, the memory update. Each answer is run
inside a segmented pass and judged by the invariant (segments with memories = one full causal pass)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from xtlab.course import Exercise, ExerciseSet, Mistake, Verdict, call, describe
from xtlab.labs.xl_rotary.memory_masks import MASK_ROWS, mask_rows_gap, slot_mask
from xtlab.labs.xl_rotary.models import EXACT_TOLERANCE, build_xl_model, example_tokens, shown_diff
from xtlab.labs.xl_rotary.positions import article_order, segment_attention_gap
from xtlab.threads import one_cpu_thread

POSITION_CASES = ((2, 3), (0, 4), (3, 1), (5, 5))


def _as_int_list(given: Any) -> list[int] | None:
    """``given`` as a list of Python ints, or None when it is not a flat sequence of integers."""
    if isinstance(given, (torch.Tensor, np.ndarray)):
        if given.dtype in (torch.bool, np.bool_) or given.ndim != 1:
            return None
        given = given.tolist()
    if not isinstance(given, (list, tuple, range)):
        return None
    if not all(isinstance(p, (int, np.integer)) and not isinstance(p, (bool, np.bool_)) for p in given):
        return None
    return [int(p) for p in given]


def _position_hint(answer: list[int], m: int, t: int) -> str:
    """The hint for a numbering whose segment differs from the full pass (shared by the exercises)."""
    memories, current = answer[:m], answer[m:]
    steps = {b - a for a, b in zip(answer[:-1], answer[1:], strict=True)}
    if answer == list(range(m)) + list(range(t)):
        return "memories and current tokens both start at 0, so the memories overlay the current tokens"
    if answer == article_order(m, t):
        return "the memories are listed newest-first; keys are stored oldest to newest, so positions must grow by 1"
    if len(set(memories)) < len(memories) or len(set(current)) < len(current):
        return ("several keys share one position: every memory and every current token needs its own position, "
                "one step after the key before it")
    if len(set(answer)) < len(answer):
        return ("a memory and a current token share a position: the memories must come just before the current "
                "tokens, each key one step after the one before it")
    if current and memories and steps <= {1, 2} and memories[-1] == current[0] - 2:
        return "off by one: the newest memory sits two steps before the first current token, leaving a gap"
    return "every key must keep its true distance to every query: the memories come just before the current tokens"


def check_memory_positions(positions_with_memory: Callable[[int, int], list[int]]) -> Verdict:
    """``positions_with_memory(M, T)``: rotary positions of the M + T keys ``[memory ; current]``, judged by one
    rotary attention head run as a segment with M memories against one full causal pass."""
    shifts = set()
    for m, t in POSITION_CASES:
        given = call(positions_with_memory, m, t)
        answer = _as_int_list(given)
        if answer is None:
            return Verdict.make_try_again(f"positions_with_memory({m}, {t}) returned {describe(given)}",
                                     "return a list of ints (or a 1-D integer tensor), one position per key")
        if len(answer) != m + t:
            return Verdict.make_try_again(f"positions_with_memory({m}, {t}) returned {len(answer)} positions",
                                     f"there are M + T = {m + t} keys, one position each")
        gap = segment_attention_gap(answer, m, t)
        if gap >= EXACT_TOLERANCE:
            return Verdict.make_try_again(f"for M={m}, T={t} you gave {answer}: the segment's attention output differs "
                                     f"from the full pass by up to {shown_diff(gap)}", _position_hint(answer, m, t))
        shifts.add(answer[0] + m)
    cases = [f"(M={m}, T={t})" for m, t in POSITION_CASES]
    if shifts == {0}:
        return Verdict.make_pass(f"arange(-M, T): the segment reproduces the full pass for {', '.join(cases)}.")
    return Verdict.make_pass(f"your positions are arange(-M, T) shifted by {sorted(shifts)}: rotary sees only "
                          f"differences, so the segment reproduces the full pass for {', '.join(cases)}.")


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


def _reference_update(mem: Tensor | None, hidden: Tensor, max_mem_len: int) -> Tensor:
    both = hidden if mem is None else torch.cat((mem, hidden), dim=1)
    return both[:, max(both.shape[1] - max_mem_len, 0):].detach()


def _update_hint(answer: Tensor, mem: Tensor | None, hidden: Tensor, max_mem_len: int) -> str:
    both = hidden if mem is None else torch.cat((mem, hidden), dim=1)
    expected = _reference_update(mem, hidden, max_mem_len)
    if answer.shape != expected.shape:
        return (f"length: the memory should hold min(M + T, max_mem_len) = {expected.shape[1]} positions along "
                f"dim 1, but yours holds shape {tuple(answer.shape)}")
    if torch.equal(answer, both[:, :max_mem_len]):
        return "it keeps the oldest positions; keep the newest (the last max_mem_len)"
    if mem is not None and torch.equal(answer, torch.cat((hidden, mem), dim=1)[:, -max_mem_len:]):
        return "the order is reversed: the memory (older) comes first, then the new hidden states"
    return "concatenate [mem ; hidden] along the positions (dim 1) and keep the last max_mem_len"


def check_update_memory(update_memory: Callable[[Tensor | None, Tensor, int], Tensor]) -> Verdict:
    """``update_memory(mem, hidden, max_mem_len)``: the next memory of one layer. Used for every layer of a
    segmented pass, it must reproduce one full pass (long memory) or the reference sliding window (short one)."""
    model = build_xl_model(max_mem_len=256)  # returns [mem ; every recorded state]: the answer does the cutting
    segment_len, num_segments = 5, 4
    tokens = example_tokens(segment_len * num_segments, seed=4)
    with torch.no_grad(), one_cpu_thread():
        full = model(tokens)
    for max_mem_len in (64, 7):
        mems = reference = None
        worst, hint = 0.0, ""
        for s in range(num_segments):
            part = slice(s * segment_len, (s + 1) * segment_len)
            with torch.no_grad(), one_cpu_thread():
                logits, recorded = model(tokens[:, part], mems=mems, return_mems=True)
                ref_logits, ref_recorded = model(tokens[:, part], mems=reference, return_mems=True)
            target = full[:, part] if max_mem_len == 64 else ref_logits
            worst = max(worst, (logits - target).abs().max().item())
            new_mems = []
            for k, rec in enumerate(recorded):
                hidden = rec[:, -segment_len:].clone().requires_grad_(True)  # as if it came from a training pass
                old = None if mems is None else mems[k]
                with torch.enable_grad():
                    answer = call(update_memory, old, hidden, max_mem_len)
                if not isinstance(answer, Tensor) or answer.ndim != 3 or answer.shape[2] != hidden.shape[2] \
                        or answer.dtype != hidden.dtype:
                    return Verdict.make_try_again(f"update_memory returned {describe(answer)}",
                                             "return a tensor (b, positions, dim) of the hidden states' dtype")
                if answer.requires_grad:
                    return Verdict.make_try_again(
                        "the new memory still requires grad: you forgot detach, so the next segment's backward pass "
                        "would run back through every earlier segment", "end with .detach()")
                expected = _reference_update(old, hidden, max_mem_len)
                if not hint and (answer.shape != expected.shape or not torch.equal(answer, expected)):
                    hint = _update_hint(answer, old, hidden.detach(), max_mem_len)
                new_mems.append(answer)
            reference = [_reference_update(None if reference is None else reference[k], rec[:, -segment_len:],
                                           max_mem_len) for k, rec in enumerate(ref_recorded)]
            mems = new_mems
        if worst >= EXACT_TOLERANCE or hint:
            against = "one full pass" if max_mem_len == 64 else "the reference sliding window"
            return Verdict.make_try_again(
                f"with max_mem_len={max_mem_len}, {num_segments} segments of {segment_len} with "
                                     f"your memories differ from {against} by up to {shown_diff(worst)}",
                                     hint or "concatenate [mem ; hidden] along dim 1 and keep the last max_mem_len")
    return Verdict.make_pass(f"{num_segments} segments of {segment_len} with your memories equal one full pass "
                          "(max_mem_len 64) and the reference sliding window (max_mem_len 7), detached.")


def _cat(mem, hidden):
    return hidden if mem is None else torch.cat((mem, hidden), dim=1)


EXERCISES = ExerciseSet(
    Exercise(
        name="positions_with_memory",
        prompt="positions_with_memory(M, T): a list of the M + T rotary positions of the keys [memory ; current], "
               "oldest memory first, so that every query-key distance is the one of a single full pass",
        checker=check_memory_positions,
        reference=lambda M, T: list(range(-M, T)),
        mistakes=(
            Mistake("memories and current tokens both from 0", lambda M, T: list(range(M)) + list(range(T)),
                    "overlay"),
            Mistake("memories newest-first, as the article prints them", article_order, "newest-first"),
            Mistake("off by one: a gap before the current tokens",
                    lambda M, T: list(range(-M - 1, -1)) + list(range(T)), "two steps before"),
            Mistake("off by one: the newest memory at 0", lambda M, T: list(range(-M + 1, 1)) + list(range(T)),
                    "share a position"),
            Mistake("positions as strings", lambda M, T: [str(p) for p in range(-M, T)], "list of ints"),
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
    Exercise(
        name="update_memory",
        prompt="update_memory(mem, hidden, max_mem_len): the next memory of one layer: [mem ; hidden] along the "
               "positions (mem may be None), only the last max_mem_len positions, detached from the graph",
        checker=check_update_memory,
        reference=_reference_update,
        mistakes=(
            Mistake("forgot detach", lambda mem, hidden, L: _cat(mem, hidden)[:, -L:], "forgot detach"),
            Mistake("keeps the oldest", lambda mem, hidden, L: _cat(mem, hidden)[:, :L].detach(), "keeps the oldest"),
            Mistake("new states first", lambda mem, hidden, L: (hidden if mem is None else torch.cat(
                (hidden, mem), dim=1))[:, -L:].detach(), "order is reversed"),
            Mistake("one position short", lambda mem, hidden, L: _cat(mem, hidden)[:, -L + 1:].detach(), "length"),
            Mistake("mem=None not handled", lambda mem, hidden, L: torch.cat((mem, hidden), dim=1)[:, -L:].detach(),
                    "raised TypeError"),
        ),
    ),
)
