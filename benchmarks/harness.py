"""Shared pieces of every benchmark: timing, statistics, peak memory, machine description, markdown tables.

The lab machines have 2 shared cores, so absolute times are noisy: benchmarks alternate what they compare
in one process, take medians, and report ratios. Only GPU absolute numbers are meant to be quoted.
"""

from __future__ import annotations

import ctypes
import datetime
import os
import platform
import statistics
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from importlib import metadata
from pathlib import Path

import psutil

REPO_ROOT = Path(__file__).resolve().parent.parent


def median(values: Sequence[float]) -> float:
    """The median of a non-empty sequence."""
    if not values:
        raise ValueError("median needs at least one value, but got an empty sequence")
    return statistics.median(values)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation between closest ranks (numpy's default)."""
    if not values:
        raise ValueError("percentile needs at least one value, but got an empty sequence")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"q must be in [0, 100], but got {q}")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def time_interleaved(candidates: Mapping[str, Callable[[], object]], repeats: int, warmup: int = 1,
                     synchronize: Callable[[], None] | None = None) -> dict[str, dict[str, list[float]]]:
    """Call each candidate in turn, ``warmup + repeats`` rounds, so load spikes hit all of them alike.

    Args:
        candidates: name -> zero-argument callable (one benchmark step).
        repeats: timed rounds. warmup: untimed rounds first (allocator, kernels, lazy init).
        synchronize: called before reading each clock (``torch.cuda.synchronize`` on a GPU).

    Returns: name -> {"wall": seconds per round, "cpu": process CPU seconds per round}. CPU time counts every
        thread of this process, so it is less disturbed by other processes than wall time on a shared machine.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, but got {repeats}")
    if warmup < 0:
        raise ValueError(f"warmup must be >= 0, but got {warmup}")
    sync = synchronize or (lambda: None)
    times: dict[str, dict[str, list[float]]] = {name: {"wall": [], "cpu": []} for name in candidates}
    for round_index in range(warmup + repeats):
        for name, step in candidates.items():
            sync()
            wall, cpu = time.perf_counter(), time.process_time()
            step()
            sync()
            if round_index >= warmup:
                times[name]["wall"].append(time.perf_counter() - wall)
                times[name]["cpu"].append(time.process_time() - cpu)
    return times


def _release_freed_heap() -> None:
    """Hand glibc's freed-but-kept heap back to the OS, so one run's leftovers do not hide the next one's growth."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: the measurement is just less tight
        pass


def _read_peak_rss() -> int | None:
    """VmHWM (peak resident set) of this process in bytes, or None where /proc is missing."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where that is not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_rss_delta(fn: Callable[[], object], sample_every_s: float = 0.001) -> int:
    """Bytes by which ``fn()`` raised this process's resident set above where it started.

    Uses the kernel's high-water mark (exact) where it can be reset, else samples RSS from a thread.
    """
    _release_freed_heap()
    process = psutil.Process()
    before = process.memory_info().rss
    if _reset_peak_rss() and _read_peak_rss() is not None:
        fn()
        return max(_read_peak_rss() - before, 0)
    peak = before
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, process.memory_info().rss)
            time.sleep(sample_every_s)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        fn()
    finally:
        done.set()
        sampler.join()
    return max(peak, process.memory_info().rss) - before


def package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine_info(device: str = "cpu") -> dict[str, str]:
    """Date, machine and library versions: the header every table carries."""
    import torch

    info = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}",
        "load average": " ".join(f"{load:.1f}" for load in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a",
        "python": platform.python_version(),
        "torch": torch.__version__,
        "x-transformers": package_version("x-transformers"),
        "xtlab": package_version("xtlab"),
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub markdown table; every row must have one cell per header."""
    for row in rows:
        if len(row) != len(headers):
            raise ValueError(f"every row needs {len(headers)} cells, but got {len(row)}: {row!r}")
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def report(title: str, info: Mapping[str, str], table: str, notes: Sequence[str] = ()) -> str:
    """A titled markdown section: machine line, table, then notes (targets met or missed, and why)."""
    header = "; ".join(f"{key}: {value}" for key, value in info.items())
    parts = [f"### {title}", "", header, "", table]
    if notes:
        parts += ["", *(f"- {note}" for note in notes)]
    return "\n".join(parts) + "\n"


def verdict(met: bool) -> str:
    return "meets target" if met else "MISSES target"
