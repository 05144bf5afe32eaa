"""Instruments that show what happens inside training, for any ``torch.nn.Module`` (no widget imports).

One file per instrument: ``gradient_presence``, ``unused_parameters``, ``ties``, ``optimizer_groups``,
``checkpoints`` (with ``checkpoint_records``: architecture record and checksum), ``ddp_runner`` (with
``process_tree``: no process a rank starts outlives the call).
"""

from xtlab.diagnostics.checkpoints import CheckpointError, LoadReport, load_checkpoint, save_checkpoint
from xtlab.diagnostics.ddp_runner import (
    DistributedRun,
    RankResult,
    default_backend,
    default_start_method,
    max_world_size,
    run_distributed,
)
from xtlab.diagnostics.gradient_presence import (
    GradientPresence,
    GradientPresenceRecorder,
    GradientState,
    record_gradient_presence,
)
from xtlab.diagnostics.model_audit import ModelAdapter, ReportCard, audit, audit_models
from xtlab.diagnostics.optimizer_groups import (
    EXEMPT_CATEGORIES,
    STRATEGIES,
    AdamWBuild,
    GroupCheck,
    ParameterRow,
    build_adamw,
    check_param_groups,
    describe_parameters,
    param_groups,
    strategy_disagreements,
)
from xtlab.diagnostics.ties import (
    TieReport,
    TieStatus,
    embedding_output_tie,
    inspect_ties,
    tensor_tie_status,
    tie_status,
)
from xtlab.diagnostics.unused_parameters import UnusedParameter, find_unused_parameters

__all__ = [
    # gradient presence
    "GradientPresence",
    "GradientPresenceRecorder",
    "GradientState",
    "record_gradient_presence",
    # unused parameters
    "UnusedParameter",
    "find_unused_parameters",
    # ties
    "TieReport",
    "TieStatus",
    "embedding_output_tie",
    "inspect_ties",
    "tensor_tie_status",
    "tie_status",
    # optimizer groups
    "EXEMPT_CATEGORIES",
    "STRATEGIES",
    "AdamWBuild",
    "GroupCheck",
    "ParameterRow",
    "build_adamw",
    "check_param_groups",
    "describe_parameters",
    "param_groups",
    "strategy_disagreements",
    # checkpoints
    "CheckpointError",
    "LoadReport",
    "load_checkpoint",
    "save_checkpoint",
    # DDP runner
    "DistributedRun",
    "RankResult",
    "default_backend",
    "default_start_method",
    "max_world_size",
    "run_distributed",
    # the report card (lab 06)
    "ModelAdapter",
    "ReportCard",
    "audit",
    "audit_models",
]
