"""A real DDP runner: a training function on N processes with ``torch.distributed`` (gloo on CPU, NCCL when
every rank has a GPU), returning each rank's result or error text. A rank that hangs or dies becomes an error
after a timeout, never a hung notebook, and no process outlives the call: not the ranks, and not what they
started (each rank leads its own process group, stopped as a whole on every exit path)."""

from __future__ import annotations

import multiprocessing
import os
import pickle
import queue
import signal
import socket
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from xtlab._checks import check_callable, check_choice, check_int, check_number, check_type, shown
from xtlab.diagnostics import process_tree

BACKENDS = ("gloo", "nccl")
# Imported once by the forkserver; every rank is then forked from it instead of importing torch afresh (spawn):
# measured 2-3.5 s per 2-rank launch against 6.5-11 s with spawn on this 2-core machine.
FORKSERVER_PRELOAD = ("torch", "torch.distributed", "xtlab.diagnostics.ddp_runner")
RANKS_PER_CPU = 4  # more ranks than this per core only thrash: each is a full Python process importing torch


def default_start_method() -> str:
    """``"forkserver"`` where the platform has it (Linux, macOS): a clean server process that imported torch once
    forks every rank, so a launch does not pay torch's import per rank; ``"spawn"`` elsewhere (Windows)."""
    return "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


def max_world_size() -> int:
    """The largest ``world_size`` :func:`run_distributed` accepts on this machine."""
    return (os.cpu_count() or 1) * RANKS_PER_CPU


@dataclass(frozen=True)
class RankResult:
    """What one rank did.

    Attributes:
        rank: the rank number.
        ok: whether ``train_fn`` returned normally.
        value: what it returned (``None`` on error).
        error: the traceback text it raised, or why it was stopped; ``""`` when ``ok``.
    """

    rank: int
    ok: bool
    value: Any
    error: str


@dataclass(frozen=True)
class DistributedRun:
    """The outcome of :func:`run_distributed`.

    Attributes:
        backend: ``"gloo"`` or ``"nccl"``.
        ranks: one :class:`RankResult` per rank, in rank order.
        seconds: wall time of the whole call, process start-up included.
    """

    backend: str
    ranks: tuple[RankResult, ...]
    seconds: float

    @property
    def ok(self) -> bool:
        """Whether every rank returned normally."""
        return all(rank.ok for rank in self.ranks)

    @property
    def errors(self) -> dict[int, str]:
        """Error text by rank, for the ranks that failed."""
        return {rank.rank: rank.error for rank in self.ranks if not rank.ok}


def default_backend(world_size: int) -> str:
    """``"nccl"`` when NCCL is built in and there is one GPU per rank, else ``"gloo"``.

    Raises:
        TypeError / ValueError: ``world_size`` is not an int >= 1.
    """
    check_int("world_size", world_size, minimum=1)
    if dist.is_nccl_available() and torch.cuda.is_available() and torch.cuda.device_count() >= world_size:
        return "nccl"
    return "gloo"


def _free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _rank_main(rank, world_size, backend, port, timeout_s, train_fn, args, results) -> None:
    """Body of each child process: join the group, run ``train_fn``, send back its result or traceback."""
    process_tree.lead_own_group()  # first: whatever train_fn starts joins this group, which cleanup kills
    torch.set_num_threads(1)  # N ranks share the machine's few cores
    try:
        if backend == "nccl":
            torch.cuda.set_device(rank)
        dist.init_process_group(
            backend, init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size,
            timeout=timedelta(seconds=timeout_s),
        )
        value = train_fn(rank, world_size, *args)
        # pickled here, by value: tensors sent through the queue would otherwise point at this process's memory
        results.put((rank, True, pickle.dumps(value)))
    except BaseException:
        results.put((rank, False, traceback.format_exc()))
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
        process_tree.kill_own_descendants()


def run_distributed(
    train_fn: Callable[..., Any],
    world_size: int = 2,
    *,
    args: tuple = (),
    timeout_s: float = 60.0,
    backend: str | None = None,
    grace_after_failure_s: float = 5.0,
    start_method: str | None = None,
) -> DistributedRun:
    """Run ``train_fn(rank, world_size, *args)`` on ``world_size`` processes joined in one process group.

    The group is already initialised when ``train_fn`` starts (``torch.distributed`` on a free loopback port),
    so it can wrap its model in ``DistributedDataParallel`` directly; each process uses one CPU thread.

    Args:
        train_fn: a module-level function (spawned processes import it by name); what it returns must pickle.
        world_size: number of processes, from 1 to :func:`max_world_size` (4 per CPU core).
        args: extra positional arguments for ``train_fn`` (must pickle).
        timeout_s: the whole call returns within about this many seconds; ranks still running are stopped
            and reported as timed out.
        backend: ``"gloo"`` or ``"nccl"``; ``None`` picks NCCL when every rank has a GPU, else gloo.
        grace_after_failure_s: once a rank fails, how long the others get to finish before they are stopped
            (they are usually blocked in a collective waiting for the failed rank).
        start_method: a ``multiprocessing`` start method; ``None`` picks :func:`default_start_method`. Avoid
            ``"fork"`` from a process that has run torch (its thread pools do not survive a fork).

    Returns:
        A :class:`DistributedRun` with one :class:`RankResult` per rank.

    Raises:
        TypeError / ValueError: bad arguments, or a ``train_fn``/``args`` that cannot be pickled.
    """
    check_callable("train_fn", train_fn)
    check_int("world_size", world_size, minimum=1)
    if world_size > max_world_size():
        raise ValueError(f"world_size must be <= {max_world_size()} ({RANKS_PER_CPU} processes per CPU core, "
                         f"{os.cpu_count()} cores here), but got {world_size}")
    check_number("timeout_s", timeout_s, minimum=0.001)
    check_number("grace_after_failure_s", grace_after_failure_s, minimum=0.0)
    check_type("args", args, tuple, "a tuple")
    if backend is not None:
        check_choice("backend", backend, BACKENDS)
    backend = default_backend(world_size) if backend is None else backend
    if backend == "nccl" and torch.cuda.device_count() < world_size:
        raise ValueError(f"backend 'nccl' needs one GPU per rank: world_size={world_size}, "
                         f"GPUs={torch.cuda.device_count()}")
    if start_method is None:
        start_method = default_start_method()
    check_choice("start_method", start_method, multiprocessing.get_all_start_methods())
    try:
        pickle.dumps((train_fn, args))
    except Exception as err:
        raise TypeError(
            f"train_fn and args must pickle so that child processes can receive them (train_fn must be a "
            f"module-level function, not a lambda or a notebook-local function); got {shown(train_fn)}: {err}"
        ) from err

    context = multiprocessing.get_context(start_method)
    if start_method == "forkserver":
        context.set_forkserver_preload(list(FORKSERVER_PRELOAD))  # read when the server starts, the first time
    results = context.Queue()
    port = _free_loopback_port()
    started = time.monotonic()
    processes: list = []
    outcomes: dict[int, tuple[bool, Any]] = {}
    # ^C, however often and whenever pressed (start-up, run, clean-up), is recorded and acted on only at safe
    # points: between two starts, in collection's polling loop, and after the clean-up has stopped every process
    with _DeferredInterrupts():
        try:  # start-up inside the cleanup too: an interrupt between two starts must not leak the first ranks
            for rank in range(world_size):
                _raise_if_interrupted()
                processes.append(context.Process(
                    target=_rank_main, args=(rank, world_size, backend, port, timeout_s, train_fn, args, results),
                    daemon=True, name=f"xtlab-ddp-rank-{rank}",
                ))
                _start_rank(processes[-1])
            outcomes = _collect(processes, results, started + timeout_s, grace_after_failure_s)
        finally:
            _stop_all(processes, finished=set(outcomes))
            results.close()
            results.cancel_join_thread()
    ranks = tuple(_rank_result(rank, outcomes, processes[rank], timeout_s) for rank in range(world_size))
    return DistributedRun(backend, ranks, time.monotonic() - started)


class _DeferredInterrupts:
    """While inside (main thread only): SIGINT is counted, not raised; :func:`_raise_if_interrupted` raises
    KeyboardInterrupt at a safe point; on leaving, the previous handler is back and one KeyboardInterrupt is
    raised if ^C was pressed and no exception is already on its way out."""

    active: list[_DeferredInterrupts] = []

    def __enter__(self) -> _DeferredInterrupts:
        self.pressed, self.raised, self.previous = 0, 0, None
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._record)
        _DeferredInterrupts.active.append(self)
        return self

    def _record(self, signum, frame) -> None:
        self.pressed += 1

    def __exit__(self, exc_type, exc, tb) -> bool:
        _DeferredInterrupts.active.remove(self)
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
        if exc_type is None and self.pressed > self.raised:
            raise KeyboardInterrupt
        return False


def _raise_if_interrupted() -> None:
    """KeyboardInterrupt if ^C was pressed since the last one raised (inside :class:`_DeferredInterrupts`)."""
    for deferral in _DeferredInterrupts.active:
        if deferral.pressed > deferral.raised:
            deferral.raised = deferral.pressed
            raise KeyboardInterrupt


def _start_rank(process) -> None:
    """Start one rank (a seam: tests interrupt start-up here)."""
    process.start()


def _collect(processes, results, deadline: float, grace_s: float) -> dict[int, tuple[bool, Any]]:
    outcomes: dict[int, tuple[bool, Any]] = {}
    stop_at = deadline
    exited_at: dict[int, float] = {}
    while len(outcomes) < len(processes) and time.monotonic() < stop_at:
        _raise_if_interrupted()
        try:
            rank, ok, payload = results.get(timeout=0.05)
        except queue.Empty:
            now = time.monotonic()
            for rank, process in enumerate(processes):
                if rank not in outcomes and process.exitcode is not None:
                    exited_at.setdefault(rank, now)
                    # give the queue a moment to deliver what the rank sent just before exiting
                    if now - exited_at[rank] > 1.0:
                        outcomes[rank] = (False, _died(rank, process.exitcode))
                        stop_at = min(stop_at, now + grace_s)
            continue
        outcomes[rank] = (ok, pickle.loads(payload) if ok else payload)
        if not ok:
            stop_at = min(stop_at, time.monotonic() + grace_s)
    for rank, process in enumerate(processes):
        # a rank that exited on its own without reporting died; name that rather than "stopped"
        if rank not in outcomes and process.exitcode is not None:
            outcomes[rank] = (False, _died(rank, process.exitcode))
    return outcomes


def _died(rank: int, exitcode: int) -> str:
    return (
        f"rank {rank} died with exit code {exitcode} without reporting a result (its stderr says why; a child "
        f"that cannot import train_fn's module dies this way)"
    )


def _rank_result(rank: int, outcomes, process, timeout_s: float) -> RankResult:
    if rank in outcomes:
        ok, payload = outcomes[rank]
        return RankResult(rank, ok, payload if ok else None, "" if ok else payload)
    failed = sorted(other for other, (ok, _) in outcomes.items() if not ok)
    if failed:
        why = f"stopped after rank(s) {failed} failed (it was most likely waiting for them in a collective)"
    else:
        why = f"did not finish within timeout_s={timeout_s} seconds and was stopped"
    return RankResult(rank, False, None, f"rank {rank} {why}")


def _stop_all(processes, finished: set[int]) -> None:
    """Let ranks that reported exit; terminate, then kill, the rest; then kill every rank's process group and
    every descendant seen, so nothing a rank started outlives the call. Ranks never started are skipped."""
    started = [process for process in processes if process.pid is not None]
    # seen now, while the ranks live: once a rank is gone, its children are orphans psutil cannot trace to it
    seen = [child for process in started for child in process_tree.descendants(process.pid)]
    for rank, process in enumerate(processes):
        if rank in finished and process.pid is not None:
            process.join(timeout=3.0)
    for process in started:
        if process.is_alive():
            process.terminate()
            process.join(timeout=2.0)
        if process.is_alive():
            process.kill()
            process.join()
    for process in started:
        seen += process_tree.group_members(process.pid)  # each rank's pid is its group id (lead_own_group)
        process_tree.kill_group(process.pid)
    process_tree.kill_and_wait(seen)
