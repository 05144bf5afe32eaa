"""xtlab: break transformer internals and watch what happens.

Layers, each depending only on those before it: ``xtlab.model`` (the transformer), ``xtlab.diagnostics``
(instruments that work on any ``torch.nn.Module``) and ``xtlab.labs`` (one package per lab, imported by
notebooks and tests only). ``xtlab.course`` holds the exercise framework, ``xtlab.widgets`` the panel,
predict-then-reveal and show-source helpers.
"""

from xtlab.device import default_device, describe_device, resolve_device
from xtlab.diagnostics.model_audit import audit
from xtlab.model import (
    Decoder,
    Encoder,
    TiedLinear,
    TransformerWrapper,
    XTransformer,
    tie_naively,
)
from xtlab.seeding import seed_everything

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "audit",
    "Decoder",
    "Encoder",
    "TiedLinear",
    "TransformerWrapper",
    "XTransformer",
    "tie_naively",
    "default_device",
    "describe_device",
    "resolve_device",
    "seed_everything",
]
