"""Lab 01 — layer dropout: skipped blocks get no gradient, step by step.

The notebook imports this package as ``lab``; every name it uses is listed here."""

from xtlab.labs.layer_dropout.arrivals_exercise import (
    RecordedRun,
    check_gradient_arrivals,
    recorded_run,
)
from xtlab.labs.layer_dropout.exercises import EXERCISES
from xtlab.labs.layer_dropout.experiments import (
    BLOCK_DEPTH,
    BLOCK_PREFIX,
    MODES,
    LayerDropoutRun,
    SkipGradientLink,
    SkipStatistics,
    StepMismatch,
    block_presence_matrix,
    build_model,
    check_skip_gradient_link,
    make_optimizer,
    parameters_of_blocks,
    run_layer_dropout,
    size_kwargs,
    skip_statistics,
    steps_without_gradient,
    wilson_interval,
)
from xtlab.labs.layer_dropout.generalization import (
    DropoutComparison,
    LossCurve,
    SeedComparison,
    Spread,
    compare_layer_dropout,
    compare_over_seeds,
    describe_step,
)
from xtlab.labs.layer_dropout.panels import (
    layer_dropout_panel,
    plot_dropout_comparison,
    plot_layer_dropout_run,
    plot_seed_comparison,
    short_row_names,
    summarize_skip_statistics,
)
from xtlab.labs.layer_dropout.presence_plot import (
    STATE_COLOURS,
    STATE_NAMES,
    draw_gradient_presence,
    plot_gradient_presence,
)
from xtlab.labs.layer_dropout.skip_plan_exercise import (
    PlanAcrossRanks,
    check_skip_plan,
    plan_across_ranks,
)
from xtlab.labs.layer_dropout.skip_units import (
    SkippedBlockCalls,
    WholeLayerSkips,
    skipped_block_calls,
    whole_layer_skips,
)
from xtlab.labs.layer_dropout.skipped_updates import (
    SkippedBlockStep,
    SkippedUpdates,
    skipped_block_updates,
)
from xtlab.labs.layer_dropout.stack_exercise import (
    StackAgainstLibrary,
    check_layer_dropout_stack,
    stack_against_library,
)
from xtlab.labs.layer_dropout.xtransformers_twin import (
    XT_DEFAULT_DIM_HEAD,
    XT_KINDS,
    SeedingOutcome,
    SourceLine,
    TwinSizes,
    build_xtransformers_model,
    parameter_count,
    run_xtransformers_layer_dropout,
    seeding_outcomes,
    twin_sizes,
    xtransformers_draws_with_python_random,
    xtransformers_skip_line,
)

check = EXERCISES.check  # lab.check(name, answer) -> PASS / NOT YET / TRY AGAIN
