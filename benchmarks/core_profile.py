"""Where a training step's time goes, op by op, in xtlab and in x-transformers (``attn_flash=True`` by default).

``core_throughput`` gives the ratio; this gives the reason: torch's profiler over a few forward + backward steps
of the same case (same call, equal parameter counts, one thread), CPU self time per op, both libraries side by
side. The matrix products and the attention kernel are the same kernels in both; the rest is where a library
can differ.

Usage: .venv/bin/python benchmarks/core_profile.py [--case 0] [--steps 3] [--against "x-transformers flash"]
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import torch
from core_throughput import CPU_CASES, LIBRARIES, Case, build_model, make_step, parameter_count
from harness import machine_info, markdown_table, report
from torch.profiler import ProfilerActivity, profile

SHARED_KERNELS = ("aten::mm", "aten::addmm", "aten::bmm", "aten::_scaled_dot_product_flash_attention_for_cpu",
                  "aten::_scaled_dot_product_flash_attention_for_cpu_backward")


def op_times(library: str, case: Case, steps: int, warmup: int = 2) -> dict[str, tuple[float, int]]:
    """``op name -> (CPU self milliseconds per step, calls per step)`` for ``steps`` profiled steps."""
    torch.manual_seed(0)
    model = build_model(library, case)
    step = make_step(model, case, torch.device("cpu"), None)
    for _ in range(warmup):
        step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    return {event.key: (event.self_cpu_time_total / 1000 / steps, event.count // steps)
            for event in prof.key_averages()}


def compare(times: dict[str, dict[str, tuple[float, int]]], top: int = 12) -> tuple[str, dict[str, float]]:
    """A table of the ``top`` ops by the larger time, and per library: total, shared kernels, the rest (ms)."""
    first, second = times
    names = sorted(set(times[first]) | set(times[second]),
                   key=lambda name: -max(times[first].get(name, (0, 0))[0], times[second].get(name, (0, 0))[0]))
    rows = []
    for name in names[:top]:
        a, b = times[first].get(name, (0.0, 0)), times[second].get(name, (0.0, 0))
        rows.append([f"`{name}`", f"{a[0]:.1f}", a[1], f"{b[0]:.1f}", b[1]])
    totals = {}
    for library in times:
        total = sum(ms for ms, _ in times[library].values())
        shared = sum(times[library].get(name, (0.0, 0))[0] for name in SHARED_KERNELS)
        totals[library] = {"total": total, "shared": shared, "rest": total - shared}
    for key in ("total", "shared", "rest"):
        label = {"total": "**all ops**", "shared": "**shared kernels** (mm, addmm, bmm, SDPA)",
                 "rest": "**the rest**"}[key]
        rows.append([label, f"{totals[first][key]:.1f}", "", f"{totals[second][key]:.1f}", ""])
    headers = ["op", f"{first} ms/step", "calls", f"{second} ms/step", "calls"]
    return markdown_table(headers, rows), totals


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", type=int, default=0, help=f"index into CPU_CASES (0..{len(CPU_CASES) - 1})")
    parser.add_argument("--steps", type=int, default=3, help="profiled steps per library")
    parser.add_argument("--against", default="x-transformers flash", choices=LIBRARIES[1:])
    args = parser.parse_args(argv)
    case = CPU_CASES[args.case]
    torch.set_num_threads(1)
    times = {library: op_times(library, case, args.steps) for library in ("xtlab", args.against)}
    table, totals = compare(times)
    counts = {library: parameter_count(build_model(library, case)) for library in times}
    xtlab, other = totals["xtlab"], totals[args.against]
    needed = other["total"] / 1.1
    notes = [
        f"case {case.name}, forward + backward, {args.steps} profiled steps, 1 thread; parameters "
        + " / ".join(f"{library} {count:,}" for library, count in counts.items()) + ".",
        f"shared kernels: {xtlab['shared'] / xtlab['total']:.0%} of xtlab's op time, "
        f"{other['shared'] / other['total']:.0%} of {args.against}'s.",
        f"a 1.1x lead would need xtlab's op time at {needed:.0f} ms: its non-shared ops at "
        f"{needed - xtlab['shared']:.0f} ms instead of {xtlab['rest']:.0f} ms (with the shared kernels unchanged).",
    ]
    info = machine_info() | {"torch threads": "1"}
    print(report(f"Core step, op by op: xtlab vs {args.against}", info, table, notes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
