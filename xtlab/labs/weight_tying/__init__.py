"""Lab 02 — weight tying: where a naive tie silently comes apart (save, load, initialisation, FSDP), and the
`TiedLinear` that keeps it.

The notebook imports this package as ``lab``; every name it uses is listed here."""

from xtlab.labs.weight_tying.checkpoints import (
    SafeRoundTrip,
    broken_save_and_load,
    safe_round_trip,
)
from xtlab.labs.weight_tying.exercises import (
    CHECKPOINT_KINDS,
    EXERCISES,
    check_load_naive_checkpoint,
    check_tie_state,
    check_tied_linear,
    naive_checkpoint,
)
from xtlab.labs.weight_tying.fsdp_ranks import (
    BACKEND,
    DEVICE,
    GROUPINGS,
    MATERIALISE,
    SCENARIO_SIZE,
    TRAINED_STYLES,
    Scenario,
    ScenarioOutcome,
    TrainConfig,
    TrainOutcome,
    corpus_batches,
    fsdp_rank,
    initial_state,
    materialised,
    run_scenario,
    shard,
    train_sharded,
)
from xtlab.labs.weight_tying.fsdp_runs import (
    GRADIENT_GAP_TOLERANCE,
    REPLAY,
    SCENARIOS,
    FSDPReport,
    ReloadRow,
    ScenarioRow,
    reload_without_fsdp,
    run_fsdp,
    scenario_lines,
)
from xtlab.labs.weight_tying.models import (
    HALF_TIED,
    STYLES,
    TIED,
    UNTIED,
    ModelSize,
    build_model,
    check_style,
    decoder,
    embedding_weight,
    output_weight,
    pair_verdict,
    shares_storage,
    storage_pointer,
    tie_keys,
    tie_verdict,
)
from xtlab.labs.weight_tying.panels import (
    BLUE,
    GREEN,
    ORANGE,
    VERMILLION,
    paths_panel,
    plot_drift,
    plot_reload_gap,
    plot_update_comparison,
    summarize_comparison,
    summarize_outcome,
    updates_panel,
)
from xtlab.labs.weight_tying.paths import (
    EMBEDDING_KEY,
    PATHS,
    PathOutcome,
    path_apply_new_parameters,
    path_as_built,
    path_assign,
    path_conflicting_keys,
    path_deepcopy,
    path_half,
    path_init_order,
    path_meta_to_empty,
    path_safetensors,
    path_to_float64,
    path_torch_save_load,
    run_path,
)
from xtlab.labs.weight_tying.sharing import (
    ArticleTiedLinear,
    FeedForwardSharing,
    article_tied_linear_follows,
    error_without_weight,
    share_feed_forward,
    xtlab_error_without_weight,
)
from xtlab.labs.weight_tying.training import (
    DriftResult,
    UpdateComparison,
    compare_half_tied_updates,
    drift_after_path,
)
from xtlab.labs.weight_tying.xtransformers import (
    LIBRARIES,
    CopyAndPickle,
    build_tied,
    copy_and_pickle,
    xtransformers_default_head_size,
    xtransformers_default_tie_scale,
    xtransformers_tie_source,
)

check = EXERCISES.check  # lab.check(name, answer) -> PASS / NOT YET / TRY AGAIN
