"""Lab 03 exercise: the segmented pass. The learner's loop runs the lab's decoder segment by segment through a
``SegmentRunner`` and keeps every layer's memory itself; it must give the library's segmented logits (one full
causal pass where the memory covers the context) on hidden cases, and the checker reads every call it made to name
the first mistake: the memory it passed (oldest kept, kept at 0, wrong stage, normalised twice, not detached,
another layer's), the positions it numbered, and, in training mode, whether a backward pass reaches an earlier
segment."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from xtlab.course import Case, Verdict, call, case_failed, compare_values, describe
from xtlab.labs.xl_rotary.models import build_xl_model, example_tokens
from xtlab.labs.xl_rotary.positions import position_hint
from xtlab.labs.xl_rotary.segmented import SegmentRunner, reference_segmented, solution_segmented_pass
from xtlab.model.attention_layers import update_memory
from xtlab.threads import one_cpu_thread

# (length, segment_len, max_mem_len, batch, training): none is the notebook's example (24 tokens, 6, 64, 2)
SEGMENTED_CASES = (
    Case("17 tokens in segments of 5 (the last one 2), max_mem_len 64 covers them all, batch 1",
         (17, 5, 64, 1, False)),
    Case("15 tokens, segments of 5, max_mem_len 3 (shorter than a segment), batch 3", (15, 5, 3, 3, False)),
    Case("12 tokens, segments of 5 (the last one 2), max_mem_len 5 (one segment), batch 1", (12, 5, 5, 1, False)),
    Case("16 tokens, segments of 4, max_mem_len 8 (longer than a segment), batch 3", (16, 4, 8, 3, False)),
    Case("12 tokens, segments of 4, max_mem_len 0 (no memory at all), batch 2", (12, 4, 0, 2, False), edge=True),
    Case("training mode, 12 tokens, segments of 4, max_mem_len 6, batch 2", (12, 4, 6, 2, True)),
)
CLOSE = {"rtol": 1e-9, "atol": 1e-12}


def _close(a: Tensor | None, b: Tensor) -> bool:
    return isinstance(a, Tensor) and a.shape == b.shape and a.dtype == b.dtype and bool(
        torch.allclose(a.detach(), b, **CLOSE))


def _memory_problem(runner: SegmentRunner, before: dict, after_mems: list[Tensor] | None, max_mem_len: int,
                    segment_index: int) -> tuple[str, str] | None:
    """(problem, hint) for the memories passed to a segment, judged from the call before it, or None if right."""
    if after_mems is None:
        if max_mem_len == 0:
            return None
        return (f"segment {segment_index} got mems=None", "pass every segment after the first the memories the "
                "one before it left (one per attention layer)")
    with torch.no_grad():
        normed = [runner.norm(k, h) for k, h in enumerate(before["hiddens"])]
        old = before["mems"] if before["mems"] is not None else [None] * runner.num_layers
        expected = [update_memory(o, n, max_mem_len) for o, n in zip(old, normed, strict=True)]
    for k, got in enumerate(after_mems):
        if got.requires_grad:
            return (f"layer {k}'s memory for segment {segment_index} still requires grad",
                    "detach the memory: without detach, backward of each segment runs back through every earlier "
                    "one and the graph grows without end")
        if _close(got, expected[k]):
            continue
        where = f"layer {k}'s memory for segment {segment_index}"
        with torch.no_grad():
            both = normed[k] if old[k] is None else torch.cat((old[k], normed[k]), dim=1)
            residual = update_memory(old[k], before["hiddens"][k], max_mem_len)
            twice = update_memory(old[k], runner.norm(k, normed[k]), max_mem_len)
        if max_mem_len == 0 and _close(got, both):
            return (f"{where} holds {got.shape[1]} positions with max_mem_len=0",
                    "max_mem_len=0 must keep nothing, but [:, -max_mem_len:] keeps everything, since -0 == 0: "
                    "slice from both.shape[1] - min(max_mem_len, both.shape[1])")
        if max_mem_len > 0 and _close(got, both[:, :max_mem_len]):
            return (f"{where} keeps the oldest positions", "keep the newest: the last max_mem_len positions of "
                    "[memory ; new states], which are the ones just before the next segment")
        if _close(got, residual):
            return (f"{where} is the residual stream before the norm",
                    "stored and applied at different stages: run_segment gives the memory to attention as is, next "
                    "to the normed current tokens, so store it normed: run_segment.norm(k, hidden)")
        if _close(got, twice):
            return (f"{where} was normalised twice",
                    "normalised twice: run_segment.norm(k, hidden) once is the stage attention uses")
        others = [j for j in range(runner.num_layers) if j != k and _close(got, expected[j])]
        if others:
            return (f"{where} is layer {others[0]}'s", "each layer keeps its own memory: mems[k] comes from "
                    "hiddens[k] and the old mems[k]")
        if got.shape != expected[k].shape:
            return (f"{where} has shape {tuple(got.shape)}, expected {tuple(expected[k].shape)}",
                    "length: keep min(M + T, max_mem_len) positions of [memory ; new states] along dim 1")
        return (f"{where} differs from the last max_mem_len positions of [its memory ; its normed states] by up "
                f"to {(got.detach() - expected[k]).abs().max().item():.2g}",
                "concatenate [mems[k] ; run_segment.norm(k, hiddens[k])] along dim 1, keep the last max_mem_len, "
                "detach")
    return None


def _calls_problem(runner: SegmentRunner, tokens: Tensor, segment_len: int, max_mem_len: int
                   ) -> tuple[str, str] | None:
    starts = list(range(0, tokens.shape[1], segment_len))
    calls = runner.calls
    if len(calls) != len(starts):
        return (f"run_segment was called {len(calls)} times for {len(starts)} segments",
                "one call per segment of segment_len tokens, in order (the last one may be shorter)")
    for s, (start, made) in enumerate(zip(starts, calls, strict=True)):
        if not torch.equal(made["segment"], tokens[:, start:start + segment_len]):
            return (f"call {s} did not get segment {s} (tokens {start}..{min(start + segment_len, tokens.shape[1])})",
                    "segment s is tokens[:, s * segment_len:(s + 1) * segment_len]")
        mems = made["mems"]
        if s == 0:
            if mems is not None and mems[0].shape[1] > 0:
                return ("the first segment got memories",
                        "the first segment has no memory: pass None (zero memories would be attended: "
                        "run_segment has no mask)")
        else:
            problem = _memory_problem(runner, calls[s - 1], mems, max_mem_len, s)
            if problem:
                return problem
        m = 0 if mems is None else mems[0].shape[1]
        t = made["segment"].shape[1]
        positions = made["positions"]
        shift = positions[0] + m if positions else 0
        if positions != list(range(-m + shift, t + shift)):
            return (f"segment {s} (M={m}, T={t}) got positions {positions}", position_hint(positions, m, t))
    return None


def _graph_problem(runner: SegmentRunner, logits: Tensor, segment_len: int) -> tuple[str, str] | None:
    """In training: backward of segment s must reach its own tokens and no earlier segment's."""
    if not logits.requires_grad:
        return ("the logits carry no graph", "a trainer calls backward on them: do not run the loop under "
                "torch.no_grad() or detach the logits")
    embedded = [made["embedded"] for made in runner.calls]
    for s in range(1, len(embedded)):
        part = logits[:, s * segment_len:(s + 1) * segment_len]
        reached = torch.autograd.grad(part.sum(), embedded[:s + 1], allow_unused=True, retain_graph=True)
        # torch.cat's backward hands zeros to the other segments' pieces: only a nonzero gradient reached one
        reached = [g is not None and bool(g.abs().max() > 0) for g in reached]
        if not reached[s]:
            return (f"backward of segment {s} does not reach its own tokens", "return the logits run_segment gave")
        earlier = [j for j, hit in enumerate(reached[:s]) if hit]
        if earlier:
            return (f"backward of segment {s} reaches segment {earlier[0]}",
                    "the graph grows across segments: detach the memories you keep")
    return None


def check_segmented_pass(segmented_pass: Callable) -> Verdict:
    """``segmented_pass(run_segment, tokens, segment_len, max_mem_len)`` -> logits (b, n, num_tokens)."""
    for case in SEGMENTED_CASES:
        length, segment_len, max_mem_len, batch, training = case.args
        model = build_xl_model(max_mem_len=max(max_mem_len, 1)).train(training)
        tokens = example_tokens(length, seed=7 + length, batch=batch)
        runner = SegmentRunner(model)
        with one_cpu_thread(), torch.enable_grad():  # a trainer's grad mode, whatever the notebook's
            with torch.no_grad():
                expected = model(tokens) if max_mem_len >= length else reference_segmented(
                    model, tokens, segment_len, max_mem_len)
            got = call(segmented_pass, runner, tokens.clone(), segment_len, max_mem_len, copy_args=False)
            problem = _calls_problem(runner, tokens, segment_len, max_mem_len)
            if problem:
                return case_failed(case, *problem)
            if not isinstance(got, Tensor):
                return case_failed(case, f"segmented_pass returned {describe(got)}",
                                   "return the logits of every segment, concatenated along the positions (dim 1)")
            difference = compare_values(got, expected, name="the logits", **CLOSE)
            if difference:
                against = "one full causal pass" if max_mem_len >= length else "the library's segmented pass"
                return case_failed(case, f"against {against}, {difference}",
                                   "return torch.cat of every segment's logits along dim 1, in order")
            if training:
                problem = _graph_problem(runner, got, segment_len)
                if problem:
                    return case_failed(case, *problem)
    return Verdict.make_pass(f"{len(SEGMENTED_CASES)} hidden cases (max_mem_len 0, shorter than, equal to and "
                             "longer than a segment, covering the whole sequence; short last segments; batch 1 to 3; "
                             "training mode, no graph across segments) give the library's logits to 1e-12.")


def _slice_last(both: Tensor, max_mem_len: int) -> Tensor:
    return both[:, -max_mem_len:]


def mistaken_segmented_pass(keep: Callable[[Tensor, int], Tensor] = _slice_last, *, detach: bool = True,
                            stage: str = "normed", positions: str = "continuous") -> Callable:
    """A segmented pass with one of the catalogued mistakes (for the exercise's catalogue and tests)."""
    def segmented_pass(run_segment, tokens, segment_len, max_mem_len):
        mems, outputs = None, []
        for start in range(0, tokens.shape[1], segment_len):
            segment = tokens[:, start:start + segment_len]
            m, t = (0 if mems is None else mems[0].shape[1]), segment.shape[1]
            numbered = list(range(-m, t)) if positions == "continuous" else list(range(m)) + list(range(t))
            logits, hiddens = run_segment(segment, mems, numbered)
            outputs.append(logits)
            new = []
            for k, hidden in enumerate(hiddens):
                state = {"normed": run_segment.norm(k, hidden), "residual": hidden,
                         "twice": run_segment.norm(k, run_segment.norm(k, hidden))}[stage]
                both = state if mems is None else torch.cat((mems[k], state), dim=1)
                kept = keep(both, max_mem_len)
                new.append(kept.detach() if detach else kept)
            mems = new
        return torch.cat(outputs, dim=1)
    return segmented_pass


def keep_newest(both: Tensor, max_mem_len: int) -> Tensor:
    return both[:, both.shape[1] - min(max_mem_len, both.shape[1]):]


__all__ = ["SEGMENTED_CASES", "check_segmented_pass", "mistaken_segmented_pass", "keep_newest",
           "solution_segmented_pass"]
