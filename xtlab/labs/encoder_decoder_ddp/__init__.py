"""Lab 05 — encoder–decoder and DDP: the encoder's unused ``to_logits``, layer dropout, and what real
``DistributedDataParallel`` runs on 2 processes do with parameters that get no gradient.

The notebook imports this package as ``lab``; every name it uses is listed here."""

from xtlab.labs.encoder_decoder_ddp.checkpoint_exercise import (
    CHECKPOINT_EXERCISE,
    check_load_before_fix,
    load_reference,
)
from xtlab.labs.encoder_decoder_ddp.ddp_panel import (
    MODELS,
    STATUS_COLORS,
    STATUS_LABELS,
    ddp_panel,
    panel_scenario,
    plot_runs,
)
from xtlab.labs.encoder_decoder_ddp.exercises import EXERCISES
from xtlab.labs.encoder_decoder_ddp.experiments import (
    DTYPES,
    SEQ_LENGTH,
    Seq2SeqRun,
    WasteReport,
    autograd_graph_size,
    build_seq2seq_model,
    build_shape_only,
    encoder_unused_parameters,
    head_kwargs,
    seq2seq_batch,
    seq2seq_loss,
    train_seq2seq,
    wasted_by_encoder_logits,
)
from xtlab.labs.encoder_decoder_ddp.finder_exercise import (
    FINDER_EXERCISE,
    check_unused_parameter_names,
    finder_reference,
)
from xtlab.labs.encoder_decoder_ddp.fix_exercise import (
    BUGGY_SEED,
    DEAD_KEYS,
    FIX_EXERCISE,
    buggy_trained_model,
    check_fix_encoder_decoder,
    decoder_logits,
    fix_reference,
    fixed_trained_model,
)
from xtlab.labs.encoder_decoder_ddp.gradient_average import GradientAverage, GradientRow, compare_gradient_average
from xtlab.labs.encoder_decoder_ddp.launch import (
    OUTCOMES,
    START_UP_S,
    STATUSES,
    TRAINING_PHASES,
    RankReport,
    ScenarioReport,
    ScenarioRuns,
    decoder_blocks,
    first_sentence,
    full_message,
    parameters_named_in_error,
    run_scenarios,
)
from xtlab.labs.encoder_decoder_ddp.library_check import (
    FIX_VERSION,
    LibraryComparison,
    compare_with_library,
    version_tuple,
)
from xtlab.labs.encoder_decoder_ddp.notebook_runs import (
    LAYER_DROPOUT_DEPTH,
    ONE_RANK_SKIPS_NOTHING,
    SAME_SKIPS,
    SKIPS_DIFFER,
    notebook_scenarios,
)
from xtlab.labs.encoder_decoder_ddp.quiz import (
    FINDER_CASES,
    MysteryTagger,
    TwoHeads,
    build_finder_case,
    finder_answer_key,
    finder_loss,
    output_loss,
)
from xtlab.labs.encoder_decoder_ddp.readiness import Readiness, ready_parameters
from xtlab.labs.encoder_decoder_ddp.reducer_exercise import (
    REDUCER_EXERCISE,
    ReducerCaseModel,
    check_attach_reducer,
    reducer_reference,
)
from xtlab.labs.encoder_decoder_ddp.scenarios import (
    BATCH_SIZE,
    DEBUG_LEVELS,
    DEVICE,
    LEARNING_RATE,
    PHASES,
    SETUP_TIMEOUT_S,
    DDPScenario,
    RankOutcome,
    ScriptedSkips,
    build_scenario_model,
    parameter_checksum,
    run_scenario_on_rank,
    run_scenarios_on_rank,
)
from xtlab.labs.encoder_decoder_ddp.settings_exercise import (
    SETTINGS,
    SETTINGS_EXERCISE,
    check_ddp_settings_for_layer_dropout,
    settings_scenario,
)
from xtlab.labs.encoder_decoder_ddp.torchrun_entry import (
    experiments as torchrun_experiments,
)
from xtlab.labs.encoder_decoder_ddp.torchrun_entry import (
    run_with_notebook_runner,
    torchrun_command,
)
from xtlab.labs.encoder_decoder_ddp.waste_panel import (
    CURVE_VOCABS,
    UNUSED_COLOR,
    USED_COLOR,
    plot_seq2seq_run,
    plot_waste,
    waste_curve,
    waste_panel,
)

check = EXERCISES.check  # lab.check(name, answer) -> PASS / NOT YET / TRY AGAIN
