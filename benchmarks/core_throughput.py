"""Training throughput of an xtlab decoder against the same decoder in x-transformers.

Both libraries build a rotary pre-norm decoder from the same call (``Decoder(dim=, depth=, heads=,
rotary_pos_emb=True, ff_mult=, layer_dropout=)`` with each library's defaults, which xtlab mirrors: 64-wide
heads, half-rotary), so the models are equal: the parameter counts are printed and must be identical. One step
is forward + cross-entropy + backward. The libraries alternate step by step in one process (interleaved, one
run) and the median of the repeats is reported, with the ratio xtlab / x-transformers (> 1: xtlab is faster).
x-transformers runs twice: as configured by default (explicit softmax attention) and with ``attn_flash=True``
(the same SDPA kernel xtlab uses), so a win from the kernel is told apart from the rest. Achieved TFLOP/s are
model FLOPs (6 x non-embedding parameters x tokens, plus causal attention) over the median step time.

With compilation on (the default on CUDA, ``--compile on`` elsewhere) the target size runs once more, xtlab
eager and ``torch.compile``-d side by side with x-transformers' flash path, in a second table: compilation is an
option of xtlab's, so x-transformers is not compiled. The compiled run comes after every eager case, so a slow
compile cannot cost the eager figures.

Usage: .venv/bin/python benchmarks/core_throughput.py [--device cuda] [--repeats 5] [--compile on|off|auto]
"""

from __future__ import annotations

import argparse
import contextlib
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from harness import machine_info, markdown_table, median, peak_rss_delta, report, time_interleaved, verdict
from torch import nn
from x_transformers import Decoder as XDecoder
from x_transformers import TransformerWrapper as XTransformerWrapper

import xtlab

TARGET_RATIO = 1.1
LIBRARIES = ("xtlab", "x-transformers", "x-transformers flash")
COMPILED = "xtlab compiled"  # xtlab's model through torch.compile (not in LIBRARIES: run on request)
COMPILED_RUN = ("xtlab", "x-transformers flash", COMPILED)


@dataclass(frozen=True)
class Case:
    """One benchmark size. With ``max_mem_len`` > 0 a step runs ``segments`` XL segments carrying memories."""

    name: str
    dim: int
    depth: int
    heads: int
    seq_len: int
    batch: int
    vocab: int = 256
    ff_mult: int = 4
    max_mem_len: int = 0
    segments: int = 1
    layer_dropout: float = 0.0

    @property
    def tokens_per_step(self) -> int:
        return self.batch * self.seq_len * self.segments


CPU_CASES = (  # the target first: B=8, L=256, dim 128, depth 4 (heads 8, dim_head 64 by default)
    Case("d128 L4 h8 B8 seq256", dim=128, depth=4, heads=8, seq_len=256, batch=8),
    Case("XL d128 L2 h4 2x128 mem128 ld0.1", dim=128, depth=2, heads=4, seq_len=128, batch=2, max_mem_len=128,
         segments=2, layer_dropout=0.1),
)

GPU_CASES = (  # bf16; the target is dim 1024, L 2048; batch kept small so x-transformers' explicit attention fits
    Case("d1024 L8 h16 B4 seq2k", dim=1024, depth=8, heads=16, seq_len=2048, batch=4),
    Case("d512 L8 h8 B8 seq1k", dim=512, depth=8, heads=8, seq_len=1024, batch=8),
)


def build_model(library: str, case: Case, compile_backend: str = "inductor") -> nn.Module:
    """The case's decoder in ``library`` (one of LIBRARIES, or COMPILED: xtlab's through ``torch.compile`` with
    ``compile_backend``), in training mode."""
    if library == COMPILED:
        return torch.compile(build_model("xtlab", case), backend=compile_backend)
    same = dict(dim=case.dim, depth=case.depth, heads=case.heads, rotary_pos_emb=True, ff_mult=case.ff_mult,
                layer_dropout=case.layer_dropout)  # the one call both libraries get
    if library == "xtlab":
        model = xtlab.TransformerWrapper(case.vocab, case.seq_len, xtlab.Decoder(**same), max_mem_len=case.max_mem_len)
    elif library in ("x-transformers", "x-transformers flash"):
        layers = XDecoder(**same, attn_flash=library.endswith("flash"))
        model = XTransformerWrapper(num_tokens=case.vocab, max_seq_len=case.seq_len, attn_layers=layers,
                                    max_mem_len=case.max_mem_len)
    else:
        raise ValueError(f"library must be one of {LIBRARIES + (COMPILED,)}, but got {library!r}")
    return model.train()


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def step_flops(model: nn.Module, case: Case) -> float:
    """Model FLOPs of one training step: 6 x non-embedding parameters x tokens (forward + backward matmuls)
    plus causal attention, 6 x depth x batch x (M + n) x n x inner (QK and AV, half the square, x3 for
    backward), per segment."""
    embedding = sum(p.numel() for name, p in model.named_parameters() if "token_emb" in name or "pos_emb" in name)
    dense = 6 * (parameter_count(model) - embedding) * case.tokens_per_step
    inner = case.heads * model.attn_layers.attn_dim_head  # both libraries name it so
    keys = case.seq_len + case.max_mem_len / 2  # the first segment has no memory, the second a full one
    attention = 6 * case.depth * case.batch * case.seq_len * keys * inner * case.segments
    return float(dense + attention)


# Dense (no sparsity) bf16 tensor-core peaks in TFLOP/s, from the vendors' data sheets, by a name fragment
# torch.cuda.get_device_name() reports. The share of peak is achieved model TFLOP/s over this number.
DENSE_BF16_PEAK_TFLOPS = (
    ("H200", 989.0),
    ("H100 PCIe", 756.0),
    ("H100", 989.0),  # SXM
    ("A100", 312.0),
    ("L40S", 362.0),
    ("L4", 121.0),
    ("A10G", 70.0),
    ("RTX 4090", 165.0),
)


def dense_bf16_peak(device_name: str) -> tuple[str, float] | None:
    """(table entry, peak TFLOP/s) for a device name, or None when the table has no entry for it."""
    for fragment, peak in DENSE_BF16_PEAK_TFLOPS:
        if fragment in device_name:
            return fragment, peak
    return None


def check_parameter_counts(counts: dict[str, int], tolerance: float = 0.0) -> None:
    """Raise unless every library's parameter count is within ``tolerance`` of xtlab's."""
    reference = counts["xtlab"]
    for library, count in counts.items():
        if abs(count - reference) > tolerance * reference:
            raise ValueError(f"{library} has {count} parameters but xtlab has {reference}: configurations differ "
                             f"by more than {tolerance:.0%}, so the throughput comparison would be unfair")


def make_step(model: nn.Module, case: Case, device: torch.device, autocast_dtype: torch.dtype | None,
              seed: int = 0) -> Callable[[], float]:
    """One training step (forward + loss + backward over every segment); returns the last loss."""
    generator = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, case.vocab, (case.segments, case.batch, case.seq_len + 1), generator=generator)
    tokens = tokens.to(device)
    use_mems = case.max_mem_len > 0
    calls = [0]

    def step() -> float:
        # same layer-dropout draws for a library on every run (the libraries draw from different RNGs)
        random.seed(seed + calls[0])
        torch.manual_seed(seed + calls[0])
        calls[0] += 1
        model.zero_grad(set_to_none=True)
        mems = None
        loss = torch.zeros(())
        for segment in tokens:
            inputs, targets = segment[:, :-1], segment[:, 1:]
            with autocast(device, autocast_dtype):
                if use_mems:
                    logits, mems = model(inputs, mems=mems, return_mems=True)
                else:
                    logits = model(inputs)
                loss = F.cross_entropy(logits.float().reshape(-1, case.vocab), targets.reshape(-1))
            loss.backward()
        return float(loss.detach())

    return step


def autocast(device: torch.device, dtype: torch.dtype | None):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def peak_memory(step: Callable[[], object], device: torch.device) -> int:
    """Bytes a step adds at its peak: GPU allocator high-water mark, or resident-set growth on the CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        step()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - base
    return peak_rss_delta(step)


def run_case(case: Case, device: torch.device, repeats: int, warmup: int = 1,
             libraries: tuple[str, ...] = LIBRARIES, compile_backend: str = "inductor") -> dict[str, dict[str, float]]:
    """Time and measure every library on one case (COMPILED among them compiles on its first step, a warmup
    step: give it ``warmup`` >= 1).

    Returns: library -> {"params", "tokens_per_s", "cpu_tokens_per_s", "peak_mib"}.
    """
    if "xtlab" not in libraries:
        raise ValueError(f"libraries must include 'xtlab' (the ratios' numerator), but got {libraries}")
    autocast_dtype = torch.bfloat16 if device.type == "cuda" else None
    if COMPILED in libraries and warmup < 1:
        raise ValueError(f"{COMPILED!r} compiles on its first step, so it needs warmup >= 1, but got {warmup}")
    models = {library: build_model(library, case, compile_backend).to(device) for library in libraries}
    counts = {library: parameter_count(model) for library, model in models.items()}
    check_parameter_counts(counts)
    steps = {library: make_step(model, case, device, autocast_dtype) for library, model in models.items()}
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else None
    times = time_interleaved(steps, repeats=repeats, warmup=warmup, synchronize=sync)
    results = {}
    for library in libraries:
        results[library] = {
            "params": counts[library],
            "tokens_per_s": case.tokens_per_step / median(times[library]["wall"]),
            "tflops": step_flops(models[library], case) / median(times[library]["wall"]) / 1e12,
            "cpu_tokens_per_s": case.tokens_per_step / median(times[library]["cpu"]),
            "peak_mib": peak_memory(steps[library], device) / 2**20,
        }
    return results


def results_table(rows: list[tuple[Case, dict[str, dict[str, float]]]]) -> str:
    headers = ["case", "tokens/step", "params xtlab / x-t", "xtlab tok/s", "x-t tok/s", "ratio", "ratio (CPU time)",
               "x-t flash tok/s", "ratio vs flash", "TFLOP/s xtlab / x-t / x-t flash",
               "peak MiB xtlab / x-t / x-t flash"]
    body = []
    for case, result in rows:
        xt, ref, flash = result["xtlab"], result["x-transformers"], result.get("x-transformers flash")
        body.append([
            case.name, case.tokens_per_step, f"{xt['params']:,} / {ref['params']:,}",
            f"{xt['tokens_per_s']:,.0f}", f"{ref['tokens_per_s']:,.0f}",
            f"**{xt['tokens_per_s'] / ref['tokens_per_s']:.2f}**",
            f"{xt['cpu_tokens_per_s'] / ref['cpu_tokens_per_s']:.2f}",
            f"{flash['tokens_per_s']:,.0f}" if flash else "-",
            f"**{xt['tokens_per_s'] / flash['tokens_per_s']:.2f}**" if flash else "-",
            f"{xt['tflops']:.3g} / {ref['tflops']:.3g}" + (f" / {flash['tflops']:.3g}" if flash else ""),
            f"{xt['peak_mib']:.0f} / {ref['peak_mib']:.0f}" + (f" / {flash['peak_mib']:.0f}" if flash else ""),
        ])
    return markdown_table(headers, body)


def compiled_run(case: Case, device: torch.device, repeats: int, warmup: int,
                 backend: str) -> tuple[dict[str, dict[str, float]] | None, str | None]:
    """``(result, None)`` of COMPILED_RUN on ``case``, or ``(None, why)`` when it could not run (out of memory, a
    backend missing or failing on this machine), so the eager figures still print."""
    try:
        return run_case(case, device, repeats=repeats, warmup=warmup, libraries=COMPILED_RUN,
                        compile_backend=backend), None
    except Exception as error:  # any failure is reported, not raised
        if isinstance(error, torch.cuda.OutOfMemoryError):
            torch.cuda.empty_cache()
        first_line = str(error).splitlines()[0] if str(error) else ""
        return None, f"{type(error).__name__}: {first_line}"


def compiled_table(case: Case, result: dict[str, dict[str, float]]) -> str:
    """The compiled run: xtlab eager and compiled with x-transformers' flash path, measured in one run."""
    headers = ["case", "tok/s xtlab / compiled / x-t flash", "compiled / eager", "compiled / x-t flash",
               "TFLOP/s xtlab / compiled / x-t flash", "peak MiB xtlab / compiled / x-t flash"]
    eager, compiled, flash = result["xtlab"], result[COMPILED], result["x-transformers flash"]
    trio = (eager, compiled, flash)
    body = [[
        case.name, " / ".join(f"{r['tokens_per_s']:,.0f}" for r in trio),
        f"**{compiled['tokens_per_s'] / eager['tokens_per_s']:.2f}**",
        f"**{compiled['tokens_per_s'] / flash['tokens_per_s']:.2f}**",
        " / ".join(f"{r['tflops']:.3g}" for r in trio), " / ".join(f"{r['peak_mib']:.0f}" for r in trio),
    ]]
    return markdown_table(headers, body)


def peak_share_notes(name: str, case: Case, shares: dict[str, float]) -> list[str]:
    """The share of the dense bf16 peak of the device called ``name`` that each run reached (``shares``: run ->
    achieved TFLOP/s)."""
    peak = dense_bf16_peak(name)
    if peak is None:
        return [f"{name}: no dense bf16 peak in the table, so no share of peak."]
    return [f"share of dense bf16 peak on {name} (table entry {peak[0]}: {peak[1]:g} TFLOP/s) at {case.name}: "
            + ", ".join(f"{run} {tflops / peak[1]:.1%}" for run, tflops in shares.items())
            + f" (goal >= 50%: {verdict(max(shares.values()) / peak[1] >= 0.5)})."]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N] (cuda runs the GPU sizes in bf16)")
    parser.add_argument("--repeats", type=int, default=15, help="timed steps per library per case")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads on the CPU (1: a shared 2-core machine makes spinning threads "
                             "wait on each other, which swamps the comparison; 0: torch's default)")
    parser.add_argument("--warmup", type=int, help="untimed steps per library per case first (1 on CPU, 2 on GPU)")
    parser.add_argument("--compile", choices=("auto", "on", "off"), default="auto",
                        help="also time xtlab through torch.compile at the target size (auto: on CUDA only)")
    parser.add_argument("--compile-backend", default="inductor", help="torch.compile backend (default inductor)")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"--device {args.device} was asked for, but torch {torch.__version__} sees no CUDA device")
    if device.type not in ("cpu", "cuda"):
        raise SystemExit(f"--device must be cpu or cuda[:N], but got {args.device!r}")
    if args.threads < 0:
        raise SystemExit(f"--threads must be >= 0, but got {args.threads}")
    if args.threads:
        torch.set_num_threads(args.threads)
    cases = GPU_CASES if device.type == "cuda" else CPU_CASES
    warmup = args.warmup if args.warmup is not None else (2 if device.type == "cuda" else 1)
    rows, out_of_memory = [], []
    for case in cases:
        try:
            result = run_case(case, device, repeats=args.repeats, warmup=warmup)
        except torch.cuda.OutOfMemoryError:  # say which size did not fit and go on with the others
            out_of_memory.append(case.name)
            torch.cuda.empty_cache()
            continue
        print(f"{case.name}: params " + ", ".join(f"{lib} {r['params']:,}" for lib, r in result.items())
              + f"; ratio {result['xtlab']['tokens_per_s'] / result['x-transformers']['tokens_per_s']:.2f}"
              + f", vs flash {result['xtlab']['tokens_per_s'] / result['x-transformers flash']['tokens_per_s']:.2f}"
              + f"; TFLOP/s xtlab {result['xtlab']['tflops']:.3g}",
              file=sys.stderr, flush=True)
        rows.append((case, result))
    if not rows:
        raise SystemExit(f"every case ran out of memory on {device}: {out_of_memory}")
    target_case, target = rows[0]
    compiled, compile_failure = None, None
    if device.type == "cuda":  # the eager share now, in case the compiled run below does not end in time
        print(peak_share_notes(torch.cuda.get_device_name(device), target_case,
                               {"xtlab": target["xtlab"]["tflops"]})[0], file=sys.stderr, flush=True)
    if args.compile == "on" or (args.compile == "auto" and device.type == "cuda"):
        compiled, compile_failure = compiled_run(target_case, device, args.repeats, max(warmup, 2),
                                                 args.compile_backend)
        if compile_failure:
            print(f"compiled run failed: {compile_failure}", file=sys.stderr, flush=True)
        else:
            print(f"{target_case.name} compiled: {compiled[COMPILED]['tokens_per_s']:,.0f} tok/s, TFLOP/s "
                  f"{compiled[COMPILED]['tflops']:.3g}", file=sys.stderr, flush=True)
    against = {lib: target["xtlab"]["tokens_per_s"] / target[lib]["tokens_per_s"] for lib in LIBRARIES[1:]}
    notes = [
        f"ratio = xtlab tok/s / x-transformers tok/s (wall, median of {args.repeats}, interleaved steps, one run); "
        f"equal models: identical parameter counts. Target >= {TARGET_RATIO} against both x-transformers "
        f"attentions at {target_case.name}: {verdict(min(against.values()) >= TARGET_RATIO)} ("
        + ", ".join(f"{lib} {r:.2f}" for lib, r in against.items()) + ").",
        "ratio (CPU time) uses this process's CPU seconds instead of wall seconds: steadier on a shared machine.",
        "x-t flash = x-transformers with attn_flash=True (SDPA, like xtlab). Peak memory: "
        + ("GPU max_memory_allocated above the step's start." if device.type == "cuda"
           else "growth of the resident set (VmHWM) over one step, gradients included."),
        "XL case: each step runs 2 segments carrying memories (max_mem_len) with layer dropout 0.1 in both libraries.",
    ]
    if compile_failure:
        notes.append(f"the compiled run failed, so only eager figures: {compile_failure}.")
    if out_of_memory:
        notes.append(f"out of memory, not measured: {', '.join(out_of_memory)}.")
    table = results_table(rows)
    if compiled is not None:
        table += (f"\n\nCompiled (torch.compile, backend {args.compile_backend}; a second run at the target size, "
                  f"its own eager figures beside it):\n\n" + compiled_table(target_case, compiled))
    if device.type == "cuda":
        shares = {"xtlab": target["xtlab"]["tflops"]}
        if compiled is not None:
            shares[COMPILED] = compiled[COMPILED]["tflops"]
        notes += peak_share_notes(torch.cuda.get_device_name(device), target_case, shares)
    precision = "bf16 autocast" if device.type == "cuda" else "fp32"
    print(report(f"Core throughput, forward + backward ({device.type}, {precision})", machine_info(str(device)),
                 table, notes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
