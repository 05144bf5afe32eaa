"""Process-tree cleanup for the DDP runner: each rank leads its own process group, so whatever it starts can
be stopped with it, and psutil (when installed) finds descendants that left the group (``setsid``).

POSIX only for the group part (``os.setsid``/``os.killpg``); elsewhere only psutil's descendants are stopped.
"""

from __future__ import annotations

import os
import signal
import time

try:
    import psutil
except ImportError:  # psutil is optional: the process group alone covers children that stay in it
    psutil = None


def lead_own_group() -> None:
    """Make the calling process (a rank) the leader of a new session and process group."""
    if hasattr(os, "setsid"):
        try:
            os.setsid()
        except OSError:  # already a group leader: its group is already its own
            pass


def descendants(pid: int | None) -> list:
    """psutil handles of every living descendant of ``pid`` (empty without psutil or when ``pid`` is gone)."""
    if psutil is None or pid is None:
        return []
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def group_members(pgid: int | None) -> list:
    """psutil handles of the processes in process group ``pgid``, including orphans reparented elsewhere."""
    if psutil is None or pgid is None or not hasattr(os, "getpgid"):
        return []
    members = []
    for process in psutil.process_iter():
        try:
            if os.getpgid(process.pid) == pgid:
                members.append(process)
        except (OSError, psutil.Error):
            continue
    return members


def kill_group(pgid: int | None) -> None:
    """SIGKILL every process in group ``pgid``; a group that no longer exists is fine."""
    if pgid is None or not hasattr(os, "killpg"):
        return
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def kill_and_wait(processes: list, timeout_s: float = 3.0) -> None:
    """SIGKILL each psutil process and wait until it is gone or a zombie (its reaper is not ours to drive)."""
    if psutil is None:
        return
    for process in processes:
        try:
            process.kill()
        except psutil.Error:
            pass
    deadline = time.monotonic() + timeout_s
    pending = list(processes)
    while pending and time.monotonic() < deadline:
        pending = [process for process in pending if _still_running(process)]
        if pending:
            time.sleep(0.02)


def _still_running(process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def kill_own_descendants() -> None:
    """Called by a rank as it finishes: stop every process it started, so none outlives it."""
    kill_and_wait(descendants(os.getpid()))
