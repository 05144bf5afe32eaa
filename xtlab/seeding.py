"""One call that makes a lab's randomness reproducible."""

from __future__ import annotations

import random

import torch

MAX_SEED = 2**64 - 1


def seed_everything(seed: int) -> None:
    """Seed Python's ``random`` and torch (CPU and every CUDA device).

    Raises:
        TypeError: ``seed`` is not an int.
        ValueError: ``seed`` is negative or above ``2**64 - 1`` (the largest seed torch takes).
    """
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, but got {type(seed).__name__}: {seed!r}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, but got {seed}")
    if seed > MAX_SEED:
        raise ValueError(f"seed must be <= 2**64 - 1 = {MAX_SEED} (the largest seed torch takes), but got {seed}")
    random.seed(seed)
    torch.manual_seed(seed)
