"""How long one AdamW step takes with each of torch's three implementations: the for-loop, ``foreach`` and
``fused``, over the same parameters and gradients, timed in interleaved rounds (so load spikes hit all alike).

On the CPU, time is the process's CPU time on one thread (less disturbed by other processes on a shared
machine than wall time); on CUDA, wall time between synchronisations.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from xtlab._checks import check_int, check_module
from xtlab.device import resolve_device
from xtlab.threads import one_cpu_thread

IMPLEMENTATIONS: dict[str, dict[str, bool]] = {
    "for-loop": {"foreach": False, "fused": False},
    "foreach": {"foreach": True, "fused": False},
    "fused": {"fused": True},
}


@dataclass(frozen=True)
class AdamWTiming:
    """Median step time per AdamW implementation for one model on one device.

    Attributes:
        device: where the parameters live ("cpu", "cuda:0").
        tensors, elements: the parameters stepped.
        seconds: implementation -> per-step times of every timed round.
        unavailable: implementation -> why torch refused it here (absent when it ran).
    """

    device: str
    tensors: int
    elements: int
    seconds: dict[str, list[float]]
    unavailable: dict[str, str]

    def median(self, implementation: str) -> float:
        return statistics.median(self.seconds[implementation])

    @property
    def fastest(self) -> str:
        return min(self.seconds, key=self.median)

    def speedup(self, implementation: str, over: str) -> float:
        """How many times faster ``implementation`` steps than ``over`` (ratio of medians)."""
        return self.median(over) / self.median(implementation)


def _optimizers(model: nn.Module, device: torch.device) -> tuple[dict[str, torch.optim.AdamW], dict[str, str]]:
    """One AdamW per implementation, each over its own copy of the parameters with the same gradients."""
    generator = torch.Generator().manual_seed(0)
    base = [p.detach().to("cpu", torch.float32) for p in model.parameters() if p.requires_grad]
    grads = [torch.randn(p.shape, generator=generator) for p in base]
    optimizers, unavailable = {}, {}
    for name, flags in IMPLEMENTATIONS.items():
        params = [nn.Parameter(p.clone().to(device)) for p in base]
        for param, grad in zip(params, grads, strict=True):
            param.grad = grad.to(device)
        try:
            optimizer = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.1, **flags)
            optimizer.step()  # first step: state allocation, kernel selection; also where fused may refuse
        except (RuntimeError, ValueError, TypeError) as err:
            unavailable[name] = f"{type(err).__name__}: {err}"
            continue
        optimizers[name] = optimizer
    return optimizers, unavailable


def time_adamw_steps(model: nn.Module, device: str | torch.device | None = None, rounds: int = 30,
                     warmup: int = 3) -> AdamWTiming:
    """Time ``rounds`` AdamW steps per implementation over ``model``'s trainable parameters on ``device``.

    Raises:
        TypeError / ValueError: ``model`` is not a module, or ``rounds`` / ``warmup`` out of range.
    """
    check_module("model", model)
    check_int("rounds", rounds, minimum=1, maximum=10_000)
    check_int("warmup", warmup, minimum=0, maximum=1000)
    device = resolve_device(device)
    on_cuda = device.type == "cuda"
    sync: Callable[[], None] = torch.cuda.synchronize if on_cuda else (lambda: None)
    clock = time.perf_counter if on_cuda else time.process_time
    with one_cpu_thread():
        optimizers, unavailable = _optimizers(model, device)
        seconds: dict[str, list[float]] = {name: [] for name in optimizers}
        for round_index in range(warmup + rounds):
            for name, optimizer in optimizers.items():
                sync()
                start = clock()
                optimizer.step()
                sync()
                if round_index >= warmup:
                    seconds[name].append(clock() - start)
    params = [p for p in model.parameters() if p.requires_grad]
    return AdamWTiming(str(device), len(params), sum(p.numel() for p in params), seconds, unavailable)


# profiler markers, constants and scalar reads of the step counts: not operations on the parameters' data
BOOKKEEPING = ("_record_function", "lift_fresh", "_local_scalar_dense", "detach")


@dataclass(frozen=True)
class StepOperations:
    """How many tensor operations one AdamW step dispatches, per implementation: the same count on every device
    (on CUDA each is at least one kernel launch), so a verdict built on it does not depend on where it ran.

    Attributes:
        tensors: the parameters stepped.
        counts: implementation -> tensor operations one ``optimizer.step()`` dispatches (after the first),
            not counting ``BOOKKEEPING``.
        fused_kernels: implementation -> how many of those are ``_fused_adamw_`` calls.
    """

    tensors: int
    counts: dict[str, int]
    fused_kernels: dict[str, int]


def count_step_operations(model: nn.Module) -> StepOperations:
    """Count the aten operations of one AdamW step per implementation, on the CPU (the count does not depend on
    the device: fused runs one ``_fused_adamw_`` per group and dtype, foreach a fixed list of ``_foreach_*``
    operations, the for-loop about ten per parameter)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Counter(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.names: list[str] = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.names.append(func.__name__)
            return func(*args, **(kwargs or {}))

    check_module("model", model)
    with one_cpu_thread():
        optimizers, _ = _optimizers(model, torch.device("cpu"))
        counts, fused = {}, {}
        for name, optimizer in optimizers.items():
            with Counter() as counter:
                optimizer.step()
            kernels = [op for op in counter.names if not op.startswith(BOOKKEEPING)]
            counts[name] = len(kernels)
            fused[name] = sum(op.startswith("_fused_adamw") for op in kernels)
    params = [p for p in model.parameters() if p.requires_grad]
    return StepOperations(len(params), counts, fused)
