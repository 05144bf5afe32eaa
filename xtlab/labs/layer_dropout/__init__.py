"""Lab 01 — layer dropout: skipped blocks get no gradient, step by step.

The notebook imports this package as ``lab``; every name it uses is listed here."""

from xtlab.labs.layer_dropout.exercises import (
    EXERCISES,
    check_expected_all_blocks_steps,
    check_skipped_blocks_at,
)
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
    parameters_of_blocks,
    run_layer_dropout,
    skip_statistics,
    wilson_interval,
)
from xtlab.labs.layer_dropout.generalization import (
    DropoutComparison,
    LossCurve,
    compare_layer_dropout,
)
from xtlab.labs.layer_dropout.panels import (
    layer_dropout_panel,
    plot_dropout_comparison,
    plot_layer_dropout_run,
    short_row_names,
    summarize_skip_statistics,
)
from xtlab.labs.layer_dropout.presence_plot import (
    STATE_COLOURS,
    STATE_NAMES,
    draw_gradient_presence,
    plot_gradient_presence,
)

check = EXERCISES.check  # lab.check(name, answer) -> PASS / NOT YET / TRY AGAIN
