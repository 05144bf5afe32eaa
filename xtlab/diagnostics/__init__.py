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

__all__ = [
    "GradientPresence",
    "GradientPresenceRecorder",
    "GradientState",
    "record_gradient_presence",
]
