"""Argument checks shared by the instruments, so every bad input gets the same clear message."""

from __future__ import annotations

from typing import Any

import torch.nn as nn


def require_module(model: Any, argument: str = "model") -> nn.Module:
    """Return ``model`` when it is a ``torch.nn.Module``; raise ``TypeError`` naming what was given otherwise."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"{argument} must be a torch.nn.Module, but got {type(model).__name__}: {model!r:.80}")
    return model


def require_callable(function: Any, argument: str) -> Any:
    """Return ``function`` when it can be called; raise ``TypeError`` naming what was given otherwise."""
    if not callable(function):
        raise TypeError(f"{argument} must be callable, but got {type(function).__name__}: {function!r:.80}")
    return function


def require_int(value: Any, argument: str, *, minimum: int) -> int:
    """Return ``value`` when it is an int >= ``minimum`` (bools refused); raise ``TypeError``/``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{argument} must be an int, but got {type(value).__name__}: {value!r:.80}")
    if value < minimum:
        raise ValueError(f"{argument} must be >= {minimum}, but got {value}")
    return value


def require_number(value: Any, argument: str, *, minimum: float) -> float:
    """Return ``value`` as a float when it is a real number >= ``minimum``; raise ``TypeError``/``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{argument} must be a number, but got {type(value).__name__}: {value!r:.80}")
    if not value >= minimum:  # also catches NaN
        raise ValueError(f"{argument} must be >= {minimum}, but got {value}")
    return float(value)
