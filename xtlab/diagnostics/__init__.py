"""Instruments that show what happens inside training, for any ``torch.nn.Module`` (no widget imports).

One file per instrument: ``gradient_presence``, ``unused_parameters``, ``ties``, ``optimizer_groups``,
``checkpoints``, ``ddp_runner``.
"""

from xtlab.diagnostics.gradient_presence import (
    GradientPresence,
    GradientPresenceRecorder,
    GradientState,
    record_gradient_presence,
)
from xtlab.diagnostics.ties import TieReport, TieStatus, inspect_ties, tie_status
from xtlab.diagnostics.unused_parameters import UnusedParameter, find_unused_parameters

__all__ = [
    "GradientPresence",
    "GradientPresenceRecorder",
    "GradientState",
    "TieReport",
    "TieStatus",
    "UnusedParameter",
    "find_unused_parameters",
    "inspect_ties",
    "record_gradient_presence",
    "tie_status",
]
