"""Full AdamW step-time benchmark: for-loop, foreach and fused, on the xtlab decoder at several sizes.

Usage: .venv/bin/python -m xtlab.labs.optimizer_groups.benchmark [--device cuda] [--rounds 30]
Prints one markdown table: the median step time per implementation, the fastest, and fused's speedup.
"""

from __future__ import annotations

import argparse

import torch

from xtlab.labs.optimizer_groups.models import xtlab_decoder
from xtlab.labs.optimizer_groups.timing import IMPLEMENTATIONS, AdamWTiming, time_adamw_steps

CPU_SIZES = ((32, 1), (128, 2), (256, 4), (512, 8))
CUDA_SIZES = ((32, 1), (256, 4), (512, 8), (1024, 12), (2048, 16))


def benchmark(device: str = "cpu", rounds: int = 30, sizes: tuple[tuple[int, int], ...] | None = None
              ) -> list[tuple[int, int, AdamWTiming]]:
    """``(dim, depth, timing)`` for each size (default: ``CPU_SIZES``, or ``CUDA_SIZES`` on CUDA)."""
    sizes = sizes or (CUDA_SIZES if str(device).startswith("cuda") else CPU_SIZES)
    return [(dim, depth, time_adamw_steps(xtlab_decoder(dim=dim, depth=depth), device, rounds=rounds))
            for dim, depth in sizes]


def markdown(results: list[tuple[int, int, AdamWTiming]]) -> str:
    """The results as a markdown table (milliseconds per step)."""
    names = list(IMPLEMENTATIONS)
    lines = ["| device | dim x depth | tensors | elements | " + " | ".join(f"{n} ms" for n in names)
             + " | fastest | fused vs for-loop | fused vs foreach |",
             "|---|---|---|---|" + "---|" * len(names) + "---|---|---|"]
    for dim, depth, t in results:
        cells = [f"{t.median(n) * 1e3:.3f}" if n in t.seconds else "n/a" for n in names]
        ratios = [f"{t.speedup('fused', other):.2f}x" if {"fused", other} <= set(t.seconds) else "n/a"
                  for other in ("for-loop", "foreach")]
        lines.append(f"| {t.device} | {dim} x {depth} | {t.tensors} | {t.elements:,} | " + " | ".join(cells)
                     + f" | {t.fastest} | " + " | ".join(ratios) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args(argv)
    print(f"torch {torch.__version__}, AdamW step time, median of {args.rounds} interleaved rounds")
    print(markdown(benchmark(args.device, args.rounds)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
