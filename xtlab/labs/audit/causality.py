"""A new invariant for the report card: a language model's output at position t ignores every later token.

The reference check for the exercise, and the planted-bug pair it is graded on (TinyLM with ``leak=True``,
whose mask lets each token see the next one, and its fixed twin: the same weights, the right mask).
"""

from __future__ import annotations

import torch
from torch import nn

from xtlab._checks import check_int, check_module, check_type
from xtlab.diagnostics.model_audit import ModelAdapter
from xtlab.labs.audit.tiny_lm import TinyLM, build_tiny_lm

CAUSAL_TOLERANCE = 1e-5


def causality_reference(model: nn.Module, adapter: ModelAdapter) -> bool:
    """True when, for every t, replacing the tokens after t leaves the outputs at positions 0..t unchanged.

    Runs in eval mode (dropout and layer dropout off: two forward passes must differ only through the tokens).
    """
    check_module("model", model)
    check_type("adapter", adapter, ModelAdapter, "a ModelAdapter")
    model.eval()
    tokens = adapter.make_batch(model, torch.Generator().manual_seed(0))[0]
    other = adapter.make_batch(model, torch.Generator().manual_seed(1))[0]
    with torch.no_grad():
        before = adapter.forward(model, (tokens,))
        for t in range(tokens.shape[1] - 1):
            changed = torch.cat((tokens[:, : t + 1], other[:, t + 1:]), dim=1)
            after = adapter.forward(model, (changed,))
            if not torch.allclose(before[:, : t + 1], after[:, : t + 1], atol=CAUSAL_TOLERANCE):
                return False
    return True


def planted_pair(seed: int = 0, **kwargs) -> tuple[TinyLM, TinyLM]:
    """``(planted bug, fixed twin)``: TinyLMs with the same weights, the first with ``leak=True``."""
    check_int("seed", seed, minimum=0)
    kwargs.pop("leak", None)
    fixed = build_tiny_lm(seed, **kwargs)
    planted = build_tiny_lm(seed, leak=True, **kwargs)
    planted.load_state_dict(fixed.state_dict())
    return planted, fixed


def first_leaking_position(model: nn.Module, adapter: ModelAdapter) -> int | None:
    """The first position whose output changes when only the *next* token changes (None: no leak found)."""
    check_module("model", model)
    model.eval()
    tokens = adapter.make_batch(model, torch.Generator().manual_seed(0))[0]
    with torch.no_grad():
        before = adapter.forward(model, (tokens,))
        for t in range(tokens.shape[1] - 1):
            changed = tokens.clone()
            changed[:, t + 1] = (changed[:, t + 1] + 1) % model.num_tokens
            after = adapter.forward(model, (changed,))
            if not torch.allclose(before[:, t], after[:, t], atol=CAUSAL_TOLERANCE):
                return t
    return None
