"""AdamW step time per implementation (for-loop, foreach, fused), model sizes side by side in one run.

The measurement lives with lab 04 (xtlab.labs.optimizer_groups.benchmark), which also times a small version in
its notebook; this runs the full sizes. Usage: .venv/bin/python benchmarks/adamw_implementations.py [--device cuda]
"""

from __future__ import annotations

import sys

from xtlab.labs.optimizer_groups.benchmark import main

if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
