"""Lab 03 — XL memories and rotary positions: positions arange(-M, T), memory masks, exact equality.

The notebook imports this package as ``lab``; every name it uses is listed here."""

from xtlab.labs.xl_rotary.equality import (
    CONFIGS,
    EXACT_TOLERANCE,
    NUM_TOKENS,
    EmptyMemories,
    SegmentedProof,
    attention_weights,
    build_xl_model,
    empty_memories,
    example_tokens,
    segmented_vs_full,
)
from xtlab.labs.xl_rotary.exercises import (
    EQUALITY_QUESTIONS,
    EXERCISES,
    POSITION_CASES,
    WHY,
    check_equality_predictions,
    check_memory_positions,
    equality_outcomes,
)
from xtlab.labs.xl_rotary.layer_dropout import (
    LIBRARIES,
    MemoryProbe,
    MemoryRouting,
    build_model,
    match,
    memory_routing,
    predicted_skips,
    seed_skipping,
)
from xtlab.labs.xl_rotary.memory_panels import (
    LOG_FLOOR,
    all_proofs,
    both_routings,
    empty_memories_panel,
    plot_empty_memories,
    plot_memory_routing,
    plot_segmented_proof,
    proof_panel,
    routing_matrix,
    routing_panel,
    summarize_empty_memories,
    summarize_proofs,
    summarize_routing,
)
from xtlab.labs.xl_rotary.position_panels import (
    compare_rotary_scores,
    key_positions_panel,
    plot_key_positions,
    plot_rotary_scores,
    rotary_scores_panel,
    summarize_key_positions,
    summarize_rotary_scores,
)
from xtlab.labs.xl_rotary.positions import (
    KeyPositions,
    RotaryScores,
    key_positions,
    rotary_scores,
)

check = EXERCISES.check  # lab.check(name, answer) -> PASS / NOT YET / TRY AGAIN
