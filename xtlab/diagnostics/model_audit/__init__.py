"""The report card: run every instrument and invariant of the course on a model you did not write.

``xtlab.audit(model)`` (this package's :func:`audit`) returns a :class:`ReportCard` (one :class:`Row` per check:
holds / fails / could not run, with the evidence, on the installed torch and x-transformers); from a shell,
``python -m xtlab.audit module:factory``. A :class:`ModelAdapter` is the one hook a new
architecture needs; ready ones exist for xtlab's and x-transformers' ``TransformerWrapper`` and
``torch.nn.Transformer``. Files: ``adapter`` (the hook), ``ready_adapters``, ``checks`` (one function per
invariant), ``tying_paths``, ``ddp_step``, ``model_state`` (put a model back as it was), ``report_card``.
"""

from xtlab.diagnostics.model_audit.adapter import ModelAdapter
from xtlab.diagnostics.model_audit.checks import PROBE_LAYER_DROPOUT, TOLERANCE, layer_dropout_set, training_presence
from xtlab.diagnostics.model_audit.ddp_step import DDP_STEPS, WORLD_SIZE, Build
from xtlab.diagnostics.model_audit.model_state import ModelSnapshot
from xtlab.diagnostics.model_audit.ready_adapters import (
    adapter_for,
    torch_transformer_adapter,
    x_transformers_adapter,
    xtlab_adapter,
)
from xtlab.diagnostics.model_audit.report_card import (
    Invariant,
    ReportCard,
    Subject,
    audit,
    audit_models,
    installed_versions,
)
from xtlab.diagnostics.model_audit.rows import (
    ADAPTER_ERROR,
    COULD_NOT_RUN,
    FAILS,
    HOLDS,
    MISSING_CAPABILITY,
    NOT_APPLICABLE,
    Row,
)
from xtlab.diagnostics.model_audit.tying_paths import PATHS, PathOutcome, run_tying_paths

__all__ = [
    "ADAPTER_ERROR", "COULD_NOT_RUN", "MISSING_CAPABILITY",
    "DDP_STEPS", "FAILS", "HOLDS", "NOT_APPLICABLE", "PATHS", "PROBE_LAYER_DROPOUT", "TOLERANCE", "WORLD_SIZE",
    "Build", "Invariant", "ModelAdapter", "ModelSnapshot", "PathOutcome", "ReportCard", "Row", "Subject",
    "adapter_for", "audit", "audit_models", "installed_versions", "layer_dropout_set", "run_tying_paths",
    "torch_transformer_adapter", "training_presence", "x_transformers_adapter", "xtlab_adapter",
]
