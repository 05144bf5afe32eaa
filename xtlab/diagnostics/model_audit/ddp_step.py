"""The 2-process DDP row: a few SGD steps under ``DistributedDataParallel(find_unused_parameters=False)`` with
layer dropout off, every audited model in one launch of :func:`run_distributed` (gloo on the CPU), each model in
its own process group. It holds when every rank finishes and the ranks end with identical parameters.

A model travels to the processes pickled (``torch.save``); one that does not pickle (x-transformers' tied
output is a lambda) needs ``build``: a picklable zero-argument function that builds the same architecture,
into which the model's state_dict is loaded.
"""

from __future__ import annotations

import ast
import copy
import hashlib
import io
import os
import pickle
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from xtlab._checks import check_callable, check_type
from xtlab.diagnostics.ddp_runner import run_distributed
from xtlab.diagnostics.model_audit.adapter import ModelAdapter
from xtlab.diagnostics.model_audit.rows import (
    ADAPTER_ERROR,
    COULD_NOT_RUN,
    FAILS,
    HOLDS,
    UNGUARDED_ENTRY_POINT,
    Row,
    missing,
    raised_in_adapter,
    short_error,
)

WORLD_SIZE = 2
DDP_STEPS = 3  # an unused parameter shows at the second forward pass
COLLECTIVE_TIMEOUT_S = 10.0
CHECK = f"a {WORLD_SIZE}-process DDP step trains (find_unused_parameters=False, layer dropout off)"


@dataclass(frozen=True)
class Build:
    """A picklable recipe for ``build=``: ``Build(factory, kwargs)()`` calls ``factory(**deepcopy(kwargs))``.

    ``factory`` must be importable by name (a class or a module-level function); the deep copy gives each call
    its own module arguments, e.g. ``Build(x_transformers.TransformerWrapper, {"attn_layers": Decoder(...)})``.
    """

    factory: Callable[..., nn.Module]
    kwargs: dict

    def __post_init__(self) -> None:
        check_callable("factory", self.factory)
        check_type("kwargs", self.kwargs, dict, "a dict of keyword arguments")

    def __call__(self) -> nn.Module:
        return self.factory(**copy.deepcopy(self.kwargs))


@dataclass(frozen=True)
class DDPJob:
    """One model for the DDP launch: how to rebuild it in a process, and its adapter."""

    name: str
    adapter: ModelAdapter
    model_bytes: bytes | None
    build: Callable[[], nn.Module] | None
    state_bytes: bytes


def _saved(obj) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def make_job(name: str, model: nn.Module, adapter: ModelAdapter,
             build: Callable[[], nn.Module] | None) -> DDPJob | Row:
    """The job for ``model``, or a row that could not run, saying why it cannot travel to another process."""
    try:
        pickle.dumps(adapter)
    except Exception as err:
        return missing("ddp_step", CHECK, f"the adapter does not pickle ({short_error(err, 90)}): define its "
                                          f"functions at module level")
    state = _saved({key: value.detach().cpu() for key, value in model.state_dict().items()})
    try:
        return DDPJob(name, adapter, _saved(model), None, state)
    except Exception as err:
        if build is None:
            return missing("ddp_step", CHECK,
                           f"the model does not pickle ({short_error(err, 90)}): pass build=, a module-level "
                           f"function that builds the same architecture")
    try:
        pickle.dumps(build)
    except Exception as err:
        return missing("ddp_step", CHECK, f"build does not pickle ({short_error(err, 90)})")
    return DDPJob(name, adapter, None, build, state)


def _materialise(job: DDPJob) -> nn.Module:
    if job.model_bytes is not None:
        model = torch.load(io.BytesIO(job.model_bytes), map_location="cpu", weights_only=False)
    else:
        model = job.build().to("cpu")
        state = torch.load(io.BytesIO(job.state_bytes), map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    if job.adapter.has_layer_dropout:
        job.adapter.set_layer_dropout(model, 0.0)
    return model.train()


def _checksum(model: nn.Module) -> str:
    digest = hashlib.sha256()
    for _, parameter in model.named_parameters():
        digest.update(parameter.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:12]


def ddp_rank(rank: int, world_size: int, jobs: Sequence[DDPJob], seed: int) -> list[tuple[bool, str, int, bool]]:
    """Each job on this rank: ``(ok, checksum or error, step reached, whether the error is the adapter's)``.
    Module level: spawned ranks import it."""
    results = []
    for number, job in enumerate(jobs):
        group = dist.new_group(backend="gloo", timeout=timedelta(seconds=COLLECTIVE_TIMEOUT_S))
        step = 0
        try:
            torch.manual_seed(seed)
            model = _materialise(job)
            ddp = DistributedDataParallel(model, process_group=group, find_unused_parameters=False)
            optimizer = torch.optim.SGD(ddp.parameters(), lr=0.01)
            for step in range(DDP_STEPS):
                optimizer.zero_grad(set_to_none=True)
                batch = job.adapter.batch(model, seed + 1000 * number + 100 * rank + step)  # own data per rank
                job.adapter.scalar_loss(ddp, batch).backward()
                optimizer.step()
            results.append((True, _checksum(model), step, False))
        except Exception as err:
            frame = raised_in_adapter(err, job.adapter.hooks)
            where = "" if frame is None else f" at {os.path.basename(frame.filename)}:{frame.lineno} in {frame.name}"
            results.append((False, short_error(err, 200) + where, step, frame is not None))
        dist.barrier()  # every rank ends this model before the next one starts
    return results


def ddp_rows(jobs: Sequence[DDPJob], seed: int, timeout_s: float) -> list[Row]:
    """One launch of :data:`WORLD_SIZE` processes for every job; one row per job, in order."""
    if not jobs:
        return []
    unguarded = unguarded_call_site()
    if unguarded is not None:
        path, line = unguarded
        evidence = (f"not started: the {WORLD_SIZE} processes would import {os.path.basename(path)} again, and its "
                    f"line {line} runs the audit at top level, so each process would start the audit anew "
                    f"(it dies with BrokenPipeError); put the call under `if __name__ == \"__main__\":`")
        return [Row("ddp_step", CHECK, COULD_NOT_RUN, evidence, UNGUARDED_ENTRY_POINT) for _ in jobs]
    run = run_distributed(ddp_rank, WORLD_SIZE, args=(tuple(jobs), seed), timeout_s=timeout_s, backend="gloo")
    if not run.ok:
        why = "; ".join(f"rank {rank}: {text.strip().splitlines()[-1]}" for rank, text in run.errors.items())
        return [Row("ddp_step", CHECK, FAILS, f"the launch failed: {why}") for _ in jobs]
    rows = []
    for index in range(len(jobs)):
        outcomes = [rank.value[index] for rank in run.ranks]
        setting = f"{WORLD_SIZE} processes (gloo), {DDP_STEPS} SGD steps"
        if all(ok for ok, _, _, _ in outcomes):
            sums = {text for _, text, _, _ in outcomes}
            same = len(sums) == 1
            evidence = f"{setting}: every rank finished; parameters identical across ranks: {same}"
            rows.append(Row("ddp_step", CHECK, HOLDS if same else FAILS, evidence))
        else:
            failed = "; ".join(f"rank {rank} at step {step}: {text}"
                               for rank, (ok, text, step, _) in enumerate(outcomes) if not ok)
            if any(adapter for ok, _, _, adapter in outcomes if not ok):
                rows.append(Row("ddp_step", CHECK, COULD_NOT_RUN,
                                f"{setting}: the adapter raised under DistributedDataParallel: {failed}; the loss must "
                                f"only call model(...) (the wrapper has none of the model's attributes)",
                                ADAPTER_ERROR))
            else:
                rows.append(Row("ddp_step", CHECK, FAILS, f"{setting}: {failed}"))
    return rows


def _is_main_test(test: ast.expr) -> bool:
    """``__name__ == "__main__"`` (either order)."""
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)):
        return False
    sides = (test.left, test.comparators[0])
    return any(isinstance(side, ast.Name) and side.id == "__name__" for side in sides) and any(
        isinstance(side, ast.Constant) and side.value == "__main__" for side in sides)


def unguarded_call_site() -> tuple[str, int] | None:
    """``(script, line)`` when this call comes from the top level of the main script outside an
    ``if __name__ == "__main__":`` block (the processes the DDP row starts import that script again, and would
    run the audit again); None when it is guarded, or there is no script (a notebook, a console, pytest)."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if main is None or not isinstance(path, str) or not path.endswith(".py") or not os.path.exists(path):
        return None
    frame = sys._getframe(1)
    while frame is not None and not (frame.f_globals is vars(main) and frame.f_code.co_name == "<module>"):
        frame = frame.f_back
    if frame is None:
        return None
    line = frame.f_lineno
    try:
        with open(path, encoding="utf-8") as file:
            tree = ast.parse(file.read())
    except (OSError, SyntaxError, ValueError):
        return None
    guarded = any(isinstance(node, ast.If) and _is_main_test(node.test)
                  and node.lineno <= line <= (node.end_lineno or 0) for node in ast.walk(tree))
    return None if guarded else (path, line)
