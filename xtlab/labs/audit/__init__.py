"""Lab 06 — the capstone: audit transformers you did not write. Every instrument and invariant of the course runs
on an x-transformers decoder, ``torch.nn.Transformer`` and TinyLM through ``xtlab.diagnostics.model_audit``.

The notebook imports this package as ``lab``; every name it uses is listed here."""

from xtlab.labs.audit.adapter_exercise import ADAPTER_EXERCISE, CASES, check_adapter_for_tiny_lm
from xtlab.labs.audit.card_plot import SHORT_CHECKS, STATUS_COLOURS, plot_report_cards
from xtlab.labs.audit.causality import CAUSAL_TOLERANCE, causality_reference, first_leaking_position, planted_pair
from xtlab.labs.audit.exercises import EXERCISES
from xtlab.labs.audit.hidden_model_exercise import AUDIT_UNKNOWN_EXERCISE, Findings, findings_on
from xtlab.labs.audit.invariant_exercise import INVARIANT_EXERCISE, PAIRS, check_outputs_ignore_later_tokens
from xtlab.labs.audit.memory_features import FEATURES, holding_builds, segmented_by_memory_features
from xtlab.labs.audit.models import (
    DEPTH,
    DIM,
    DIM_HEAD,
    HEADS,
    LAYER_DROPOUT,
    MAX_MEM_LEN,
    MAX_SEQ_LEN,
    NUM_MEM_KV,
    NUM_MEMORY_TOKENS,
    NUM_TOKENS,
    build_torch_transformer,
    build_x_transformers,
    parameter_count,
    seeded,
    x_transformers_recipe,
)
from xtlab.labs.audit.seeding_panel import (
    PYTHON_SEEDS,
    STEPS,
    TORCH_SEED,
    SeedingRuns,
    plot_seeding_runs,
    seeding_panel,
    seeding_runs,
    summarize_seeding_runs,
)
from xtlab.labs.audit.tiny_lm import (
    TinyBlock,
    TinyLM,
    build_tiny_lm,
    tiny_lm_adapter,
    tiny_lm_batch,
    tiny_lm_forward,
    tiny_lm_get_block_drop,
    tiny_lm_loss,
    tiny_lm_set_block_drop,
)

check = EXERCISES.check  # lab.check(name, answer) -> PASS / NOT YET / TRY AGAIN
