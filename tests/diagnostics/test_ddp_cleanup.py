"""No process outlives run_distributed: not the ranks and not the children they start, on every exit path
(success, failure, a rank dying, timeout, KeyboardInterrupt during start-up or during collection)."""

import multiprocessing
import os
import time
from pathlib import Path

import psutil
import pytest

from tests.diagnostics.ddp_train_functions import start_grandchild_then
from xtlab.diagnostics import ddp_runner
from xtlab.diagnostics.ddp_runner import run_distributed

pytestmark = pytest.mark.slow  # real processes importing torch: seconds each on a 2-core machine

FAST = "forkserver"  # torch imported once in the server (see test_ddp_runner.py); the cleanup does not depend on it
HELPERS = ("forkserver", "resource_tracker")  # multiprocessing's long-lived helpers, shared by every call
multiprocessing.set_forkserver_preload(["torch", "torch.distributed", "tests.diagnostics.ddp_train_functions"])


def helper(process: psutil.Process) -> bool:
    try:
        return any(name in " ".join(process.cmdline()) for name in HELPERS)
    except psutil.Error:
        return True  # gone while we looked


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def descendants() -> set[int]:
    return {process.pid for process in psutil.Process().children(recursive=True)}


def wait_for(condition, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting in the test itself"
        time.sleep(0.05)


def assert_nothing_outlives(before: set[int], folder: Path, grandchildren: int) -> None:
    pids = [int(path.read_text()) for path in folder.glob("grandchild-*.pid")]
    assert len(pids) == grandchildren
    assert [pid for pid in pids if alive(pid)] == []
    left = [psutil.Process(pid) for pid in descendants() - before if alive(pid)]
    assert [process for process in left if not helper(process)] == []
    assert [child for child in multiprocessing.active_children() if child.name.startswith("xtlab-ddp")] == []


@pytest.mark.parametrize(
    ("how", "timeout_s", "grandchildren", "ok"),
    [
        ("return", 120, 2, True),  # success: each rank stops its own children as it finishes
        ("raise", 120, 2, False),  # rank 1 fails; rank 0 is stopped in its barrier, with its child
        ("exit", 120, 2, False),  # rank 1 dies without running any finally: only its process group finds its child
        ("own_session", 6, 2, False),  # timeout; the children left the ranks' groups: found through psutil
    ],
)
def test_no_process_outlives_the_call(tmp_path, how, timeout_s, grandchildren, ok):
    before = descendants()
    run = run_distributed(start_grandchild_then, 2, args=(str(tmp_path), how), timeout_s=timeout_s,
                          grace_after_failure_s=1.0, start_method=FAST)
    assert run.ok is ok, run.errors
    assert_nothing_outlives(before, tmp_path, grandchildren)


def test_keyboard_interrupt_during_start_up_leaves_no_rank(tmp_path, monkeypatch):
    started = []
    real_start = ddp_runner._start_rank

    def interrupted_start(process) -> None:
        if started:  # the second start: rank 0 runs (it leads its own group), rank 1 never starts
            wait_for(lambda: os.getpgid(started[0].pid) == started[0].pid)
            raise KeyboardInterrupt
        real_start(process)
        started.append(process)

    monkeypatch.setattr(ddp_runner, "_start_rank", interrupted_start)
    before = descendants()
    with pytest.raises(KeyboardInterrupt):
        run_distributed(start_grandchild_then, 2, args=(str(tmp_path), "hang"), timeout_s=60, start_method=FAST)
    assert not alive(started[0].pid)
    assert_nothing_outlives(before, tmp_path, 0)


def test_keyboard_interrupt_during_collection_stops_ranks_and_their_children(tmp_path, monkeypatch):
    def interrupted_collect(processes, results, deadline, grace_s):
        wait_for(lambda: len(list(tmp_path.glob("grandchild-*.pid"))) == len(processes))
        raise KeyboardInterrupt

    monkeypatch.setattr(ddp_runner, "_collect", interrupted_collect)
    before = descendants()
    with pytest.raises(KeyboardInterrupt):
        run_distributed(start_grandchild_then, 2, args=(str(tmp_path), "hang"), timeout_s=60, start_method=FAST)
    assert_nothing_outlives(before, tmp_path, 2)
