"""Lab 03 — XL memories and rotary positions: where memories are recorded and used, which positions keep rotary's
distances, which slots a mask hides, and what layer dropout does to memories in x-transformers. Every verdict is
one invariant: segments with memories give the logits of one full causal pass (float64).

The notebook imports this package as ``lab``; every name it uses is listed here."""

from xtlab.labs.xl_rotary.causes import ZeroMemoryCauses, zero_memory_causes
from xtlab.labs.xl_rotary.exercises import EXERCISES
from xtlab.labs.xl_rotary.layer_dropout import (
    LIBRARIES,
    LOOP_STEPS,
    MemoryProbe,
    MemoryRouting,
    build_model,
    equal_to,
    library_version,
    loop_lines,
    memory_routing,
    predicted_skips,
    same_object,
    seed_skipping,
)
from xtlab.labs.xl_rotary.memory_batches import (
    BATCH_CASES,
    batch_wide_mask,
    check_batch_memories,
    example_streams,
    row_gaps,
    solution_batch_memories,
)
from xtlab.labs.xl_rotary.memory_masks import (
    MASK_ROWS,
    MASK_RULES,
    EmptyMemories,
    attend_everything,
    attention_weights,
    empty_memories,
    mask_rows_gap,
    slot_mask,
    whole_tensor_flag,
)
from xtlab.labs.xl_rotary.memory_panels import (
    LOG_FLOOR,
    both_routings,
    designs_panel,
    empty_memories_panel,
    plot_designs,
    plot_empty_memories,
    plot_memory_routing,
    routing_matrix,
    routing_panel,
    summarize_designs,
    summarize_empty_memories,
    summarize_routing,
)
from xtlab.labs.xl_rotary.models import (
    DEPTH,
    DIM,
    EXACT_TOLERANCE,
    GAIN_SPREAD,
    HEADS,
    NUM_TOKENS,
    build_xl_model,
    example_tokens,
    shown_diff,
    size_kwargs,
)
from xtlab.labs.xl_rotary.position_panels import (
    plot_position_schemes,
    positions_panel,
    summarize_position_schemes,
)
from xtlab.labs.xl_rotary.positions import (
    POSITION_SCHEMES,
    PositionSchemes,
    article_order,
    position_hint,
    position_schemes,
    segment_attention_gap,
)
from xtlab.labs.xl_rotary.recording import (
    DESIGNS,
    Design,
    SegmentedProof,
    all_designs,
    forward_with_design,
    segmented_vs_full,
)
from xtlab.labs.xl_rotary.routing_exercise import (
    ROUTING_CASES,
    LayerStack,
    build_routing_model,
    check_run_layers,
    gated_full_pass,
    library_segment,
    routing_vs_full,
    solution_run_layers,
    which_memories,
    xtransformers_routing,
)
from xtlab.labs.xl_rotary.segmented import SegmentRunner, reference_segmented, solution_segmented_pass
from xtlab.labs.xl_rotary.segmented_exercise import SEGMENTED_CASES, check_segmented_pass
from xtlab.labs.xl_rotary.xtransformers_check import (
    XTransformersProof,
    xtransformers_segmented_vs_full,
    xtransformers_zero_memories,
)

check = EXERCISES.check  # lab.check(name, answer) -> PASS / NOT YET / TRY AGAIN
