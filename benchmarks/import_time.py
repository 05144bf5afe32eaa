"""Cold-start cost of ``import xtlab`` on top of ``import torch``.

Each run is a fresh interpreter (nothing cached in-process; the OS file cache is warm after the first run,
as it is for a learner re-running a notebook). Two measurements, alternated, median of the runs:
- in-process: the child times ``import xtlab`` right after ``import torch`` (the number the target is about);
- whole process: wall time of ``python -c "import torch; import xtlab"`` minus ``python -c "import torch"``.
The heaviest modules ``import xtlab`` pulls in (from ``python -X importtime``) say where the time goes.

Usage: .venv/bin/python benchmarks/import_time.py [--runs 7]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time

from harness import REPO_ROOT, machine_info, markdown_table, median, report, verdict

TARGET_S = 0.5
TIMED_IMPORT = ("import time; import torch; start = time.perf_counter(); import xtlab; "
                "print(time.perf_counter() - start)")


def run_python(code: str, *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *flags, "-c", code], capture_output=True, text=True, check=True,
                          cwd=REPO_ROOT)


def wall_time(code: str) -> float:
    start = time.perf_counter()
    run_python(code)
    return time.perf_counter() - start


def measure(runs: int) -> dict[str, list[float]]:
    """Seconds per run for: torch alone, torch + xtlab (whole process), and xtlab after torch (in-process)."""
    if runs < 1:
        raise ValueError(f"runs must be >= 1, but got {runs}")
    samples: dict[str, list[float]] = {"torch": [], "torch + xtlab": [], "xtlab after torch": []}
    run_python("import torch; import xtlab")  # warm the file cache and byte-code, as a second launch would be
    for _ in range(runs):
        samples["torch"].append(wall_time("import torch"))
        samples["torch + xtlab"].append(wall_time("import torch; import xtlab"))
        samples["xtlab after torch"].append(float(run_python(TIMED_IMPORT).stdout.strip()))
    return samples


def heaviest_imports(top: int = 8) -> list[tuple[str, float]]:
    """(module, cumulative seconds) of the slowest modules imported by ``import xtlab`` after torch."""
    return parse_importtime(run_python("import torch; import xtlab", "-X", "importtime").stderr, top)


def parse_importtime(stderr: str, top: int = 8) -> list[tuple[str, float]]:
    """Top-level modules (and xtlab's direct children) imported after torch, slowest first, from -X importtime."""
    lines = stderr.splitlines()
    # -X importtime lists torch's imports first; keep only what came after torch's own top-level line
    torch_done = max((i for i, line in enumerate(lines) if re.search(r"\|\s*torch$", line)), default=-1)
    found = []
    for line in lines[torch_done + 1:]:
        match = re.match(r"import time:\s*(\d+)\s*\|\s*(\d+)\s*\|(\s*)(\S+)", line)
        if match:
            found.append((match.group(4), int(match.group(2)) / 1e6, len(match.group(3))))
    shallow = [(name, seconds) for name, seconds, indent in found if indent <= 3 and name != "xtlab"]
    return sorted(shallow, key=lambda item: -item[1])[:top]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="fresh interpreters per measurement")
    args = parser.parse_args(argv)
    samples = measure(args.runs)
    in_process = median(samples["xtlab after torch"])
    whole = median(samples["torch + xtlab"]) - median(samples["torch"])
    rows = [[name, f"{median(values):.3f}", f"{min(values):.3f}", f"{max(values):.3f}"]
            for name, values in samples.items()]
    rows.append(["difference of whole-process medians", f"{whole:.3f}", "", ""])
    notes = [f"`import xtlab` after `import torch`: {in_process:.3f} s in-process (median of {args.runs}); target "
             f"<= {TARGET_S} s: {verdict(in_process <= TARGET_S)}.",
             "slowest modules pulled in after torch (cumulative s, -X importtime, one run): "
             + ", ".join(f"{name} {seconds:.3f}" for name, seconds in heaviest_imports())]
    print(report("Import time", machine_info(),
                 markdown_table(["measurement", "median s", "min s", "max s"], rows), notes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
