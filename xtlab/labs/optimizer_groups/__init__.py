"""Lab 04 — optimizer parameter groups: which parameters get weight decay, and why.

The notebook imports this package as ``lab``; every name it uses is listed here."""

from xtlab.labs.optimizer_groups.exercises import (
    EXERCISE_WEIGHT_DECAY,
    EXERCISES,
    PREDICTION_NAMES,
    PREDICTION_STRATEGY,
    check_group_predictions,
    check_param_groups_function,
    unseen_models,
)
from xtlab.labs.optimizer_groups.groups import (
    AdamWChoice,
    Disagreement,
    GroupingMistake,
    GroupTable,
    GroupTotal,
    adamw_choice,
    classify_all,
    disagreements,
    duplicate_tied_parameter_mistake,
    forgotten_parameter_mistake,
    group_table,
    group_totals,
    groups_by_category,
    row_named,
    xtransformers_table,
)
from xtlab.labs.optimizer_groups.panels import (
    CATEGORY_COLORS,
    DECAY_CHOICES,
    GROUPING_STYLES,
    STRONG_DECAY_CHOICES,
    decay_panel,
    gain_trace_summary,
    group_table_html,
    group_table_panel,
    norm_trace_summary,
    plot_gain_traces,
    plot_group_numel,
    plot_norm_traces,
    unit_offset_panel,
)
from xtlab.labs.optimizer_groups.specimens import (
    SPECIMEN_SEQ_LEN,
    SPECIMEN_VOCAB,
    TwoNormLM,
    small_lm,
    specimen_model,
    xtransformers_specimen,
)
from xtlab.labs.optimizer_groups.training import (
    GROUPINGS,
    MEMORY_TOKENS,
    NORM_GAIN,
    UNIT_OFFSET_LABELS,
    GainTrace,
    NormTrace,
    gains_under_strong_decay,
    norms_under_groupings,
)

check = EXERCISES.check  # lab.check(name, answer) -> PASS / NOT YET / TRY AGAIN
