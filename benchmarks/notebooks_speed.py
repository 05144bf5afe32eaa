"""Wall time of every lab notebook executed headlessly, and the total against the classroom target.

Each notebook runs top to bottom with nbclient in a fresh kernel named by its own metadata (the kernel nbval
starts), from the notebooks' folder; nothing is written back. Kernel start-up is counted in the wall time, as
it is under ``make test``; "cells" is the time the kernel spent executing cells.

Usage: .venv/bin/python benchmarks/notebooks_speed.py [notebooks/01_layer_dropout.ipynb ...]
"""

from __future__ import annotations

import argparse
import datetime
import sys
import time
from pathlib import Path

import nbformat
from harness import REPO_ROOT, machine_info, markdown_table, report, verdict
from nbclient import NotebookClient

TARGET_TOTAL_S = 90.0
NOTEBOOK_DIR = REPO_ROOT / "notebooks"


def cell_seconds(nb) -> list[tuple[int, float, str]]:
    """(cell index, seconds, first source line) per executed cell, from nbclient's timing metadata."""
    timed = []
    for index, cell in enumerate(nb.cells):
        timing = cell.get("metadata", {}).get("execution", {})
        start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
        if start and end:
            first_line = next((line for line in cell.source.splitlines() if line.strip()), "")
            timed.append((index, (parse_time(end) - parse_time(start)).total_seconds(), first_line[:60]))
    return timed


def parse_time(stamp: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def execute_notebook(path: Path, timeout: int = 600) -> dict[str, object]:
    """Run one notebook in memory. Returns {"wall", "cells", "slowest", "error"} (error: None or its last line)."""
    nb = nbformat.read(path, as_version=4)
    kernel_name = nb.metadata.get("kernelspec", {}).get("name", "python3")
    client = NotebookClient(nb, timeout=timeout, kernel_name=kernel_name, record_timing=True,
                            resources={"metadata": {"path": str(path.parent)}}, store_widget_state=False)
    start = time.perf_counter()
    error = None
    try:
        client.execute()
    except Exception as err:  # a notebook being written right now may fail: time it and say so
        error = f"{type(err).__name__}: {str(err).strip().splitlines()[-1] if str(err).strip() else ''}"[:120]
    cells = cell_seconds(nb)
    slowest = max(cells, key=lambda item: item[1], default=None)
    return {"wall": time.perf_counter() - start, "cells": sum(seconds for _, seconds, _ in cells),
            "slowest": f"#{slowest[0]} {slowest[1]:.1f} s `{slowest[2].replace('|', '/')}`" if slowest else "-",
            "error": error}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every notebooks/*.ipynb")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    args = parser.parse_args(argv)
    paths = args.notebooks or sorted(NOTEBOOK_DIR.glob("*.ipynb"))
    if not paths:
        raise SystemExit(f"no notebooks found under {NOTEBOOK_DIR}")
    rows, total = [], 0.0
    for path in paths:
        result = execute_notebook(path, args.timeout)
        total += result["wall"]
        print(f"{path.name}: {result['wall']:.1f} s", file=sys.stderr, flush=True)
        rows.append([path.name, f"{result['wall']:.1f}", f"{result['cells']:.1f}", result["slowest"],
                     result["error"] or "ok"])
    rows.append(["**total**", f"**{total:.1f}**", "", "", ""])
    notes = [f"{len(paths)} notebooks; whole suite target <= {TARGET_TOTAL_S:.0f} s: "
             f"{verdict(total <= TARGET_TOTAL_S)}.",
             "wall includes starting a kernel per notebook (as nbval does); each notebook's target is well under "
             "30 s."]
    print(report("Notebooks, executed headlessly", machine_info(),
                 markdown_table(["notebook", "wall s", "cells s", "slowest cell", "status"], rows), notes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
