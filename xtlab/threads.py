"""Run tiny models on one CPU thread.

The labs' models are tiny (dim 32-64): with torch's default intra-op threads on a small, busy CPU,
the threads spend more time waiting on each other than computing (measured here: 10-25x slower than
one thread on a loaded 2-core machine). Experiments wrap their training in ``one_cpu_thread()``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def one_cpu_thread() -> Iterator[None]:
    """Use one intra-op CPU thread inside the block, and restore the previous setting after it."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
