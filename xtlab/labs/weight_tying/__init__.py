"""Lab 02 — weight tying: where a naive tie silently comes apart through save and load.

The notebook imports this package as ``lab``; every name it uses is listed here."""

from xtlab.labs.weight_tying.checkpoints import (
    SafeRoundTrip,
    safe_round_trip,
)
from xtlab.labs.weight_tying.exercises import (
    EXERCISES,
    check_fix_survives_to_empty,
    check_is_tied,
)
from xtlab.labs.weight_tying.models import (
    STYLES,
    ModelSize,
    build_model,
    check_style,
    embedding_weight,
    output_weight,
    pair_verdict,
    shares_storage,
    storage_pointer,
    tie_keys,
    tie_verdict,
)
from xtlab.labs.weight_tying.panels import (
    paths_panel,
    plot_drift,
    plot_update_comparison,
    plot_validation_symptom,
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
from xtlab.labs.weight_tying.training import (
    EMBEDDING_INIT_STD,
    TRAIN_SIZE,
    DriftResult,
    SymptomResult,
    UpdateComparison,
    compare_half_tied_updates,
    drift_after_path,
    validation_symptom,
)
from xtlab.labs.weight_tying.xtransformers import (
    CopyAndPickle,
    build_tied,
    copy_and_pickle,
)

check = EXERCISES.check  # lab.check(name, answer) -> PASS / NOT YET / TRY AGAIN
