"""Argument checks shared by the model's constructors and forward passes.

Each raises ``TypeError``/``ValueError`` with a message that names the bad value and what was expected.
"""

from __future__ import annotations

import torch
from torch import Tensor


def check_int(name: str, value, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, but got {type(value).__name__}: {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, but got {value}")
    return value


def check_probability(name: str, value, allow_one: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a float, but got {type(value).__name__}: {value!r}")
    upper_ok = value <= 1.0 if allow_one else value < 1.0
    if not (value >= 0.0 and upper_ok):
        interval = "[0, 1]" if allow_one else "[0, 1)"
        raise ValueError(f"{name} must be in {interval}, but got {value}")
    return float(value)


def check_choice(name: str, value, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, but got {value!r}")
    return value


def check_tensor(name: str, value) -> Tensor:
    if not isinstance(value, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, but got {type(value).__name__}")
    return value


def check_bool_mask(name: str, mask, shape: tuple[int, ...]) -> Tensor:
    """A boolean mask of exactly ``shape`` (True = may be attended)."""
    check_tensor(name, mask)
    if mask.dtype != torch.bool:
        raise TypeError(f"{name} must be a bool tensor (True = keep), but got dtype {mask.dtype}")
    if tuple(mask.shape) != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, but got {tuple(mask.shape)}")
    return mask
