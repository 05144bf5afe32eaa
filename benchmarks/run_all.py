"""Run every benchmark, each in its own fresh interpreter, and print (optionally save) their markdown tables.

Usage: .venv/bin/python benchmarks/run_all.py [--device cuda] [--only core_throughput,import_time] [--output FILE]
(``make bench`` runs it with no arguments: the CPU sizes.)
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

BENCHMARK_DIR = Path(__file__).resolve().parent
BENCHMARKS = ("import_time", "core_throughput", "core_profile", "adamw_implementations", "widgets_speed",
              "redraw_backends", "notebooks_speed")
WITH_DEVICE = ("core_throughput", "adamw_implementations")  # the benchmarks that take --device


def run_benchmark(name: str, extra_args: list[str]) -> tuple[int, str]:
    """Run ``benchmarks/<name>.py``; progress goes to our stderr, the table is returned."""
    result = subprocess.run([sys.executable, str(BENCHMARK_DIR / f"{name}.py"), *extra_args], stdout=subprocess.PIPE,
                            text=True, cwd=BENCHMARK_DIR.parent)
    return result.returncode, result.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help=f"passed to {WITH_DEVICE} (cuda: the GPU sizes)")
    parser.add_argument("--only", default=",".join(BENCHMARKS), help=f"comma-separated subset of {BENCHMARKS}")
    parser.add_argument("--output", type=Path, help="also write all tables to this markdown file")
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(BENCHMARKS))
    if unknown:
        raise SystemExit(f"--only names unknown benchmarks {unknown}; expected some of {BENCHMARKS}")
    sections, failed = [], []
    for name in chosen:
        start = time.perf_counter()
        code, table = run_benchmark(name, ["--device", args.device] if name in WITH_DEVICE else [])
        print(table, flush=True)
        print(f"[{name}: {time.perf_counter() - start:.0f} s, exit {code}]", file=sys.stderr, flush=True)
        sections.append(table)
        if code:
            failed.append(name)
    if args.output:
        args.output.write_text("\n".join(sections))
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
