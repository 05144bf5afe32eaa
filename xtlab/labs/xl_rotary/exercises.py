"""Lab 03 exercises: the segmented pass (checker in ``segmented_exercise``) and the per-sample memory mask of a
batch of streams (``memory_batches``), and the memory routing of one segment under layer dropout
(``routing_exercise``). Each answer is judged by the invariant: segments with memories give the
logits of one full causal pass (or of the library's own segmented pass where the memory is shorter than the history),
and a batched row gives the logits of its stream alone."""

from __future__ import annotations

from xtlab.course import Exercise, ExerciseSet, Mistake
from xtlab.labs.xl_rotary.memory_batches import BATCH_MISTAKES, check_batch_memories, solution_batch_memories
from xtlab.labs.xl_rotary.routing_exercise import ROUTING_MISTAKES, check_run_layers, solution_run_layers
from xtlab.labs.xl_rotary.segmented_exercise import (
    check_segmented_pass,
    keep_newest,
    mistaken_segmented_pass,
    solution_segmented_pass,
)

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
        name="batch_memories",
        prompt="batch_memories(streams, num_layers, dim): streams[i] is None (a stream that just started) or one "
               "(L_i, dim) memory per layer; return (mems, mem_masks): per layer a (b, M, dim) tensor, M the longest "
               "L_i, each row's memory left-padded with zeros, and a (b, M) bool mask, True for each row's real slots",
        checker=check_batch_memories,
        reference=solution_batch_memories,
        mistakes=BATCH_MISTAKES,
    ),
    Exercise(
        name="run_layers",
        prompt="run_layers(stack, x, mems, ran, max_mem_len): run one segment through the L attention layers, "
               "layer k only when ran[k], with stack.run(k, x, mem); return (x, new_mems), x after the last layer "
               "and one memory per layer for the next segment, each made by update_memory(..., max_mem_len)",
        checker=check_run_layers,
        reference=solution_run_layers,
        mistakes=ROUTING_MISTAKES,
    ),
)
