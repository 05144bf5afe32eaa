"""Lab 03, per-sample memory masks: one batch, streams at different stages (fresh, short memory, full memory).

The article decides "is there a memory" once for the whole batch (``torch.any(mem)``). A server that batches
streams cannot: a stream that just started has no memory while its neighbours have some. ``batch_memories``
left-pads every stream's memory to the longest (so its real slots end just before the current tokens, where
rotary puts them) and marks, per row and slot, which slots are real: an explicit mask, which also attends a real
memory that happens to be all zero. Each row must give the logits it gives alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from xtlab.course import Case, Mistake, Verdict, call, case_failed, describe
from xtlab.labs.xl_rotary.models import DEPTH, DIM, EXACT_TOLERANCE, build_xl_model, example_tokens
from xtlab.threads import one_cpu_thread

Stream = Sequence[Tensor] | None  # one (L, dim) memory per attention layer, or None for a fresh stream


def solution_batch_memories(streams: Sequence[Stream], num_layers: int, dim: int
                            ) -> tuple[list[Tensor], Tensor]:
    """The exercise's reference: left-padded (b, M, dim) memories per layer and the (b, M) mask of real slots."""
    lengths = [0 if stream is None else stream[0].shape[0] for stream in streams]
    longest = max(lengths)
    dtype = next((stream[0].dtype for stream in streams if stream is not None), torch.float64)
    mems = []
    for k in range(num_layers):
        layer = torch.zeros(len(streams), longest, dim, dtype=dtype)
        for row, stream in enumerate(streams):
            if stream is not None and lengths[row]:
                layer[row, longest - lengths[row]:] = stream[k]
        mems.append(layer)
    mask = torch.arange(longest) >= longest - torch.tensor(lengths)[:, None]
    return mems, mask


def batch_wide_mask(mems: list[Tensor]) -> Tensor:
    """The article's rule: one flag for the whole batch, ``torch.any(mem)``, broadcast to (b, M)."""
    return torch.any(mems[0]).expand(mems[0].shape[:2])


def example_streams(lengths: Sequence[int | None], seed: int = 5, zero_slot: tuple[int, int] | None = None
                    ) -> tuple[list[Stream], Tensor]:
    """Streams with memories of the given lengths (None: fresh), each the normed states the lab's model records
    for that stream's previous tokens, and the batch's current tokens (b, 6).

    Args:
        zero_slot: (row, slot) of a real memory slot set to zero in every layer (a zero memory to be attended).
    """
    model = build_xl_model(max_mem_len=64)
    streams: list[Stream] = []
    with torch.no_grad(), one_cpu_thread():
        for row, length in enumerate(lengths):
            if length is None:
                streams.append(None)
                continue
            previous = example_tokens(length, seed=seed + 10 * row)
            _, mems = model(previous, return_mems=True)
            stream = [mem[0].clone() for mem in mems]
            if zero_slot is not None and zero_slot[0] == row:
                for mem in stream:
                    mem[zero_slot[1]] = 0.0
            streams.append(stream)
    return streams, example_tokens(6, seed=seed, batch=len(lengths))


def rows_alone(streams: Sequence[Stream], current: Tensor) -> list[Tensor]:
    """Each row's logits run alone with exactly its own memory (every slot attended)."""
    model = build_xl_model(mask_empty_mems=False)
    with torch.no_grad(), one_cpu_thread():
        return [model(current[row:row + 1], mems=None if stream is None else [mem[None] for mem in stream])
                for row, stream in enumerate(streams)]


def rows_batched(mems: list[Tensor] | None, mem_masks: Tensor | None, current: Tensor) -> Tensor:
    """The batch's logits with the given memories and mask (the model's own empty-slot rule off)."""
    model = build_xl_model(mask_empty_mems=False)
    with torch.no_grad(), one_cpu_thread():
        return model(current, mems=mems, mem_masks=mem_masks)


def row_gaps(lengths: Sequence[int | None] = (None, 3, 6), seed: int = 5) -> dict[str, list[float]]:
    """max |batched - alone| per row, with the per-sample mask and with the article's batch-wide flag."""
    streams, current = example_streams(lengths, seed)
    mems, mask = solution_batch_memories(streams, DEPTH, DIM)
    alone = rows_alone(streams, current)
    gaps = {}
    for rule, rows_mask in (("per-sample mask", mask), ("torch.any(mem) for the batch", batch_wide_mask(mems))):
        batched = rows_batched(mems, rows_mask, current)
        gaps[rule] = [(batched[row:row + 1] - alone[row]).abs().max().item() for row in range(len(streams))]
    return gaps


# --- the exercise ------------------------------------------------------------------------------------------------

# (lengths of the streams' memories, None = fresh; a real slot set to zero or None): none is the notebook's batch
BATCH_CASES = (
    Case("3 streams: fresh, 4 and 4 memories", ((None, 4, 4), None)),
    Case("4 streams: 2, fresh, 5 and 1 memories", ((2, None, 5, 1), None)),
    Case("2 streams of 3 memories, the second holding an all-zero state that must be attended", ((3, 3), (1, 0))),
    Case("2 fresh streams: no memory in the batch", ((None, None), None), edge=True),
    Case("1 stream of 5 memories", ((5,), None), edge=True),
)


def _right_padded(streams: Sequence[Stream], num_layers: int, dim: int) -> tuple[list[Tensor], Tensor]:
    mems, mask = solution_batch_memories(streams, num_layers, dim)
    longest = mask.shape[1]
    lengths = mask.sum(dim=1)
    for k, stream_layer in enumerate(mems):
        for row, stream in enumerate(streams):
            stream_layer[row] = 0.0
            if stream is not None and lengths[row]:
                stream_layer[row, :lengths[row]] = stream[k]
    return mems, torch.arange(longest) < lengths[:, None]


def _mask_hint(got: Tensor, expected: Tensor, mems: list[Tensor]) -> str:
    if got.numel() and bool((got == got.flatten()[0]).all()) and bool(got.flatten()[0]) == bool(torch.any(mems[0])):
        return ("your mask is one flag for the whole batch, like the article's torch.any(mem): a fresh stream next "
                "to one with memories attends its zero slots; decide per row and slot")
    if torch.equal(got, ~expected):
        return "the mask is inverted: True means the slot holds a real memory and may be attended"
    if torch.equal(got, mems[0].abs().amax(dim=-1) > 0):
        return ("you decided by content (all-zero slot = empty), which hides a real memory that happens to be zero: "
                "decide from the streams' lengths, which tell no memory from zero memory")
    if bool((got == got[:, :1]).all()):
        return "one flag per row: a short memory padded to the longest has padding slots to hide; decide per slot"
    return "True exactly for the last L slots of a row whose memory holds L states"


def check_batch_memories(batch_memories: Callable) -> Verdict:
    """``batch_memories(streams, num_layers, dim)`` -> (mems, mem_masks), judged row by row against each stream
    run alone."""
    for case in BATCH_CASES:
        lengths, zero_slot = case.args
        streams, current = example_streams(lengths, seed=11 + len(lengths), zero_slot=zero_slot)
        expected_mems, expected_mask = solution_batch_memories(streams, DEPTH, DIM)
        got = call(batch_memories, streams, DEPTH, DIM)
        if not isinstance(got, tuple) or len(got) != 2:
            return case_failed(case, f"batch_memories returned {describe(got)}", "return a pair (mems, mem_masks)")
        mems, mask = got
        longest = expected_mask.shape[1]
        if longest == 0 and mems is None and mask is None:
            continue
        if not isinstance(mems, (list, tuple)) or len(mems) != DEPTH or not all(
                isinstance(m, Tensor) and m.dtype == torch.float64 for m in mems):
            return case_failed(case, f"mems is {describe(mems)}",
                               f"mems is a list of {DEPTH} float64 tensors (b, M, dim), one per attention layer")
        if any(tuple(m.shape) != tuple(expected_mems[0].shape) for m in mems):
            return case_failed(case, f"mems[0] has shape {tuple(mems[0].shape)}, expected "
                               f"{tuple(expected_mems[0].shape)}", "M is the longest memory in the batch: pad the "
                               "shorter ones with zeros to it")
        if not isinstance(mask, Tensor) or mask.dtype != torch.bool or mask.shape != expected_mask.shape:
            return case_failed(case, f"mem_masks is {describe(mask)}",
                               f"mem_masks is a bool tensor (b, M) = {tuple(expected_mask.shape)}")
        if not all(torch.equal(m, e) for m, e in zip(mems, expected_mems, strict=True)):
            right, _ = _right_padded(streams, DEPTH, DIM)
            if all(torch.equal(m, r) for m, r in zip(mems, right, strict=True)):
                return case_failed(case, "the real memories come first and the padding after them",
                                   "pad on the left: a row's real memory must end in the last slot, just before "
                                   "its current tokens, so rotary keeps their distances")
            return case_failed(case, "the memories differ from the streams' memories left-padded with zeros",
                               "row i of mems[k] is zeros, then stream i's layer-k memory in the last slots")
        if not torch.equal(mask, expected_mask):
            batched = rows_batched(list(mems), mask, current)
            alone = rows_alone(streams, current)
            moved = [(row, (batched[row:row + 1] - a).abs().max().item()) for row, a in enumerate(alone)]
            row, worst = max(moved, key=lambda item: item[1])
            return case_failed(case, f"with your mask, row {row} differs from that stream alone by {worst:.2g}",
                               _mask_hint(mask, expected_mask, list(mems)))
        batched = rows_batched(list(mems), mask, current)
        worst = max((batched[row:row + 1] - a).abs().max().item() for row, a in enumerate(rows_alone(streams,
                                                                                                     current)))
        if worst >= EXACT_TOLERANCE:
            return case_failed(case, f"a row differs from its stream alone by {worst:.2g}",
                               "left-pad each stream's memory with zeros to the longest and mark its real slots True")
    return Verdict.make_pass(f"{len(BATCH_CASES)} hidden batches (fresh streams next to continuing ones, short "
                             "memories padded, a real all-zero memory, an all-fresh batch): every row equals its "
                             "stream run alone.")


def _with_mask(rule: Callable[[list[Tensor], Tensor], Tensor]) -> Callable:
    def batch_memories(streams, num_layers, dim):
        mems, mask = solution_batch_memories(streams, num_layers, dim)
        return mems, rule(mems, mask)
    return batch_memories


BATCH_MISTAKES = (
    Mistake("one flag for the whole batch (the article's torch.any(mem))",
            _with_mask(lambda mems, mask: batch_wide_mask(mems)), "one flag for the whole batch"),
    Mistake("decides by content: all-zero slots hidden",
            _with_mask(lambda mems, mask: mems[0].abs().amax(dim=-1) > 0), "decided by content"),
    Mistake("pads on the right", _right_padded, "pad on the left"),
    Mistake("inverted mask", _with_mask(lambda mems, mask: ~mask), "inverted"),
    Mistake("one flag per row", _with_mask(lambda mems, mask: mask.any(dim=1, keepdim=True).expand(mask.shape)),
            "one flag per row"),
)
