"""Lab 04 — optimizer parameter groups: one decay rule (``rule.py``), the article's recipe on real models judged by
it, AdamW's implementations timed and counted, and what weight decay does to a gain.

The notebook imports this package as ``lab``; every name it uses is listed here."""

from xtlab.labs.optimizer_groups.decay import (
    STORAGES,
    GainDecay,
    gain_decay_adam_l2,
    gain_decay_adamw,
    gain_decay_closed_form,
)
from xtlab.labs.optimizer_groups.exercises import (
    DECISION_REASONS,
    EXERCISE_WEIGHT_DECAY,
    EXERCISES,
    GROUP_CASES,
    GROUP_MODELS,
    NEW_KIND_AS_RULE_KIND,
    NEW_KINDS,
    BiasMLPModel,
    CenteredRMSNorm,
    RootParameters,
    check_adamw_step,
    check_build_param_groups,
    check_decay_decisions,
    check_find_group_problems,
    hidden_models,
)
from xtlab.labs.optimizer_groups.grouping_view import GROUPINGS, GroupingView, ViewRow, grouping_view
from xtlab.labs.optimizer_groups.implementation_exercise import (
    ACCEPTED,
    CHOICES,
    FOREACH_DEVICES,
    FUSED_DEVICES,
    IMPLEMENTATION_CASES,
    REFUSALS,
    Refusal,
    check_choose_implementation,
    implementation_of,
    tensor_kinds,
)
from xtlab.labs.optimizer_groups.models import (
    DEPTH,
    DIM,
    HEADS,
    MEMORY,
    MODELS,
    SEQ_LEN,
    VOCAB,
    build_model,
    parameter_count,
    tied_by_assignment,
    torch_transformer,
    xtlab_decoder,
    xtransformers_decoder,
    xtransformers_direct_gains,
)
from xtlab.labs.optimizer_groups.panels import (
    IMPLEMENTATION_COLORS,
    PROBLEM_COLORS,
    decay_panel,
    gain_decay_summary,
    grouping_panel,
    grouping_view_html,
    plot_gain_decay,
    plot_grouping_view,
    plot_recipe_runs,
    plot_step_times,
    recipe_table_html,
    show_gain_decay,
    show_recipe_runs,
    show_step_times,
)
from xtlab.labs.optimizer_groups.recipe import (
    RECIPE_KEYWORDS,
    Placement,
    RecipeDecision,
    RecipeRun,
    ReferenceRow,
    article_create_optimizer,
    placements,
    recipe_decisions,
    recipe_module_types,
    reference_rows,
    run_article_recipe,
)
from xtlab.labs.optimizer_groups.rule import (
    DECAY_RULE,
    KINDS,
    MEMORY_LEAVES,
    REASONS,
    is_norm,
)
from xtlab.labs.optimizer_groups.timing import (
    IMPLEMENTATIONS,
    AdamWTiming,
    StepOperations,
    count_step_operations,
    time_adamw_steps,
)

check = EXERCISES.check  # lab.check(name, answer) -> PASS / NOT YET / TRY AGAIN
