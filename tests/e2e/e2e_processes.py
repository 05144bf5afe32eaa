"""Find and end the processes one test run started, by a marker in their environment.

Jupyter starts each kernel in a session of its own, so killing the server's process group
does not reach the kernels. Every process the run starts (server, kernels, browser) inherits
a marker variable, which lets the run find all of them afterwards, and only them.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

MARKER_VARIABLE = "XTLAB_E2E_RUN"


def marked_processes(marker: str) -> list[int]:
    """Process ids (other than this one) whose environment holds ``XTLAB_E2E_RUN=<marker>``.

    Args:
        marker: the run's unique value of ``XTLAB_E2E_RUN``.
    """
    if not marker:
        raise ValueError("marker must be a non-empty string, but got an empty one")
    needle = f"{MARKER_VARIABLE}={marker}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:  # the process ended while we looked, or is not ours to read
            continue
        if state != "Z" and needle in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


def end_marked_processes(marker: str, grace_s: float = 5.0) -> list[int]:
    """SIGTERM, then SIGKILL after ``grace_s``, every process carrying the marker; return those found.

    Args:
        marker: the run's unique value of ``XTLAB_E2E_RUN``.
        grace_s: seconds to wait for a clean exit before SIGKILL.
    """
    leftovers = marked_processes(marker)
    for pid in leftovers:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while marked_processes(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in marked_processes(marker):
        _signal(pid, signal.SIGKILL)
    return leftovers


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:  # already gone
        pass
