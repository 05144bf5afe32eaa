"""Lab 03 exercise: memory routing under layer dropout. The learner writes the layer loop of one segment,
``run_layers(stack, x, mems, ran, max_mem_len) -> (x, new_mems)``: attention layer k reads ``mems[k]`` when it runs,
and every layer, run or skipped, records its normed input, so its memory stays the last positions before the next
segment. The checker runs hidden skip patterns over consecutive segments against xtlab's decoder with the same
skips, reads which memory each layer got, and names the first mistake.

A skipped layer's memory could instead be carried over unchanged. Over several segments that leaves a hole: the
memory then holds states from an earlier segment at the positions of the segment just before, which no full pass
computes. ``routing_vs_full`` measures both against a full causal pass whose skipped layers add nothing at the
skipped segment's positions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from xtlab._checks import check_int
from xtlab.course import Case, Mistake, Verdict, call, case_failed, describe
from xtlab.labs.xl_rotary.models import DIM, GAIN_SPREAD, HEADS, NUM_TOKENS, example_tokens, size_kwargs
from xtlab.model import Decoder, TransformerWrapper
from xtlab.model.attention_layers import update_memory
from xtlab.seeding import seed_everything
from xtlab.threads import one_cpu_thread

CLOSE = {"rtol": 1e-9, "atol": 1e-12}


def build_routing_model(depth: int, seed: int = 0) -> TransformerWrapper:
    """The lab's tiny rotary XL decoder (dim 32, 2 heads, random norm gains, float64, eval) with ``depth`` layers."""
    check_int("depth", depth, minimum=1)
    seed_everything(seed)
    layers = Decoder(DIM, depth, HEADS, rotary_pos_emb=True, **size_kwargs())
    model = TransformerWrapper(NUM_TOKENS, 256, layers, max_mem_len=64)
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for norm in [block.norm for block in layers.layers] + [layers.final_norm]:
            base = 0.0 if getattr(norm, "unit_offset", False) else 1.0
            for gain in norm.parameters():
                gain.copy_(base + GAIN_SPREAD * torch.randn(gain.shape, generator=generator))
    return model.double().eval()


class LayerStack:
    """The attention layers of one xtlab decoder, one at a time, for ``run_layers``.

    ``stack.record(k, x)``: what layer k records from its input ``x`` (b, T, dim): its pre-norm of ``x``.
    ``stack.run(k, x, mem)``: ``x`` after layer k (its attention over ``[mem ; current]``, then its feed-forward
    block); ``mem`` is None or (b, M, dim). ``stack.num_layers``: L.

    Every ``run`` is logged in ``runs`` as (k, the mem it got), every ``record`` in ``records``, for checkers.
    """

    def __init__(self, model: TransformerWrapper):
        self.model = model
        blocks = list(model.attn_layers.layers)
        self.attn = [b for b in blocks if b.kind == "attn"]
        self.ff = [b for b in blocks if b.kind == "ff"]
        self.num_layers = len(self.attn)
        self.runs: list[tuple[int, Tensor | None]] = []
        self.records: dict[int, Tensor] = {}

    def record(self, k: int, x: Tensor) -> Tensor:
        check_int("k", k, minimum=0, maximum=self.num_layers - 1)
        self.records[k] = self.attn[k].norm(x)
        return self.records[k]

    def run(self, k: int, x: Tensor, mem: Tensor | None) -> Tensor:
        check_int("k", k, minimum=0, maximum=self.num_layers - 1)
        self.runs.append((k, mem))
        b, n, _ = x.shape
        key_mask = self.model.attn_layers.key_mask(mem, None, None, b, n)
        x = x + self.attn[k].fn(self.attn[k].norm(x), mem=mem, key_mask=key_mask)
        return x + self.ff[k].fn(self.ff[k].norm(x))


def solution_run_layers(stack: LayerStack, x: Tensor, mems: list[Tensor] | None, ran: Sequence[bool],
                        max_mem_len: int) -> tuple[Tensor, list[Tensor]]:
    """The exercise's reference: each layer reads its own memory; every layer records its input."""
    new_mems = []
    for k, runs in enumerate(ran):
        mem = None if mems is None else mems[k]
        new_mems.append(update_memory(mem, stack.record(k, x), max_mem_len))
        if runs:
            x = stack.run(k, x, mem)
    return x, new_mems


def library_segment(model: TransformerWrapper, x: Tensor, mems: list[Tensor] | None, ran: Sequence[bool],
                    max_mem_len: int) -> tuple[Tensor, list[Tensor]]:
    """xtlab's ``AttentionLayers`` on one segment with attention layers ``ran`` forced (feed-forwards run), before
    its final norm: the routing the library does under layer dropout."""
    layers = model.attn_layers
    skips = [not runs for runs in ran for _ in (0, 1)]  # blocks alternate attn, ff; a skipped layer skips both
    layers.draw_skips = lambda: skips
    layers.final_norm, final_norm = torch.nn.Identity(), layers.final_norm
    try:
        return layers(x, mems=mems, return_mems=True, max_mem_len=max_mem_len)
    finally:
        layers.final_norm = final_norm
        del layers.draw_skips


def segmented_logits(run_layers: Callable, model: TransformerWrapper, tokens: Tensor, segment_len: int,
                     max_mem_len: int, patterns: Sequence[Sequence[bool]], stack: LayerStack | None = None
                     ) -> tuple[Tensor, list[list[Tensor]]]:
    """Logits (b, n, num_tokens) of ``tokens`` run segment by segment, segment s with attention layers
    ``patterns[s]``, through ``run_layers`` (the memories after each segment as well)."""
    stack = LayerStack(model) if stack is None else stack
    mems, outputs, kept = None, [], []
    for s, start in enumerate(range(0, tokens.shape[1], segment_len)):
        x = model.token_emb(tokens[:, start:start + segment_len])
        x, mems = run_layers(stack, x, mems, patterns[s], max_mem_len)
        outputs.append(model.to_logits(model.attn_layers.final_norm(x)))
        kept.append(mems)
    return torch.cat(outputs, dim=1), kept


def gated_full_pass(model: TransformerWrapper, tokens: Tensor, segment_len: int,
                    patterns: Sequence[Sequence[bool]]) -> Tensor:
    """One causal pass over all of ``tokens``: layer k adds its attention and feed-forward output only at the
    positions of segments whose pattern runs it, and every position's input is a key of layer k."""
    stack = LayerStack(model)
    n = tokens.shape[1]
    x = model.token_emb(tokens)
    for k in range(stack.num_layers):
        gate = torch.tensor([patterns[p // segment_len][k] for p in range(n)], dtype=x.dtype)[None, :, None]
        x = x + gate * (stack.run(k, x, None) - x)
    return model.to_logits(model.attn_layers.final_norm(x))


def carry_skipped(stack, x, mems, ran, max_mem_len):
    """The routing that leaves a skipped layer's memory as it was (the issue's proposal)."""
    new_mems = []
    for k, runs in enumerate(ran):
        mem = None if mems is None else mems[k]
        new_mems.append(update_memory(mem, stack.record(k, x), max_mem_len) if runs or mem is None else mem)
        if runs:
            x = stack.run(k, x, mem)
    return x, new_mems


def xtransformers_routing(stack, x, mems, ran, max_mem_len):
    """x-transformers' loop: a skipped layer ``continue``s before ``mems.pop(0)`` and before it records, and the
    returned memories zip the old list with the recorded states of the layers that ran."""
    pending = [None] * len(ran) if mems is None else list(mems)
    recorded = []
    for k, runs in enumerate(ran):
        if not runs:
            continue
        recorded.append(stack.record(k, x))
        x = stack.run(k, x, pending.pop(0) if pending else None)
    old = [None] * len(recorded) if mems is None else mems
    return x, [update_memory(o, r, max_mem_len) for o, r in zip(old, recorded, strict=False)]


def routing_vs_full(depth: int = 3, segment_len: int = 4) -> dict[str, float]:
    """max |segmented - gated full pass| for three segments (layer 0 skipped in the second only), per routing."""
    model = build_routing_model(depth)
    tokens = example_tokens(3 * segment_len, seed=3, batch=2)
    patterns = [[True] * depth, [False] + [True] * (depth - 1), [True] * depth]
    with torch.no_grad(), one_cpu_thread():
        full = gated_full_pass(model, tokens, segment_len, patterns)
        gaps = {}
        for name, routing in (("every layer records its input", solution_run_layers),
                              ("a skipped layer's memory carried unchanged", carry_skipped),
                              ("a skipped layer's memory dropped", _routing(skipped="drop")),
                              ("x-transformers' order", xtransformers_routing)):
            got, _ = segmented_logits(routing, model, tokens, segment_len, 64, patterns)
            gaps[name] = (got - full).abs().max().item()
    return gaps


def call_quietly(run_layers: Callable, stack: LayerStack, x: Tensor, mems: list[Tensor], ran: list[bool]):
    """``run_layers(stack, x, mems, ran, 64)``, or the reference's result when it raises (a stub)."""
    try:
        got = run_layers(stack, x, mems, ran, 64)
        if isinstance(got, tuple) and len(got) == 2 and isinstance(got[1], (list, tuple)):
            return got
    except Exception:  # noqa: BLE001 - the notebook's table must run on any answer
        pass
    stack.runs.clear()
    stack.records.clear()
    return solution_run_layers(stack, x, mems, ran, 64)


def which_memories(run_layers: Callable, depth: int = 3, skipped: int = 0) -> dict[str, list]:
    """Segment A runs every layer, segment B skips attention layer ``skipped``: which memory of A's list each layer
    read in B (by identity; None: none, "-": skipped), and for each memory B returned, the layer whose memory of A
    it continues and the layer whose recorded B input it appended (by value; None: neither)."""
    model = build_routing_model(depth)
    tokens = example_tokens(8, seed=4)
    ran = [k != skipped for k in range(depth)]
    stack = LayerStack(model)
    with torch.no_grad(), one_cpu_thread():
        x_a = model.token_emb(tokens[:, :4])
        _, mems_a = solution_run_layers(stack, x_a, None, [True] * depth, 64)
        stack.runs.clear()
        stack.records.clear()
        _, got = call_quietly(run_layers, stack, model.token_emb(tokens[:, 4:]), list(mems_a), ran)
    read = {k: next((j for j, m in enumerate(mems_a) if mem is m), None) for k, mem in stack.runs}
    appended = [stack.records.get(k) for k in range(depth)]
    returned_old, returned_new = [], []
    for mem in got:
        returned_old.append(next((j for j, m in enumerate(mems_a) if mem is not None and mem.shape[1] > 4
                                  and torch.equal(mem[:, :-4], m)), None))
        returned_new.append(next((j for j, m in enumerate(appended) if mem is not None and m is not None
                                  and mem.shape[1] >= 4 and torch.equal(mem[:, -4:], m)), None))
    return {"read": [read.get(k, "-") if ran[k] else "-" for k in range(depth)], "returned_old": returned_old,
            "returned_new": returned_new}


# --- the checker -------------------------------------------------------------------------------------------------

T, F = True, False
# (depth, batch, segment_len, max_mem_len, pattern per segment): the notebook shows depth 3, layer 0 skipped
ROUTING_CASES = (
    Case("depth 3, batch 1, 3 segments of 4: layer 0 skipped in the second, read again in the third",
         (3, 1, 4, 16, ((T, T, T), (F, T, T), (T, T, T)))),
    Case("depth 3, batch 2, 3 segments of 4: the last layer skipped, then the middle one",
         (3, 2, 4, 16, ((T, T, T), (T, T, F), (T, F, T)))),
    Case("depth 4, batch 2, segments of 3, max_mem_len 2 (shorter than a segment), alternating skips",
         (4, 2, 3, 2, ((T, T, T, T), (T, F, T, F), (F, T, F, T)))),
    Case("depth 6, batch 2, segments of 3, every other layer skipped", (6, 2, 3, 12, ((T,) * 6, (T, F) * 3))),
    Case("depth 1, batch 1: the only layer skipped in the middle segment", (1, 1, 4, 8, ((T,), (F,), (T,))),
         edge=True),
    Case("depth 3, batch 1: every layer skipped in every segment", (3, 1, 4, 8, ((F, F, F), (F, F, F))), edge=True),
    Case("depth 2, batch 2: nothing skipped", (2, 2, 4, 8, ((T, T), (T, T))), edge=True),
)


def _same(a, b) -> bool:
    return (isinstance(a, Tensor) and isinstance(b, Tensor) and a.shape == b.shape and a.dtype == b.dtype
            and a.device == b.device and bool(torch.allclose(a.detach(), b, **CLOSE)))


def _memory_problem(k: int, got, expected: Tensor, old: Tensor | None, runs: bool, x_out: Tensor | None,
                    stack: LayerStack, max_mem_len: int, where: str) -> tuple[str, str] | None:
    if _same(got, expected):
        return None
    name = f"layer {k}'s memory after {where}" + ("" if runs else f" (layer {k} was skipped)")
    if got is None or (isinstance(got, Tensor) and got.numel() == 0):
        return (f"{name} is {describe(got)}", "dropped: a skipped layer still has a memory, and it runs again in a "
                "later segment: give it update_memory(mems[k], stack.record(k, x), max_mem_len) like every layer")
    if not isinstance(got, Tensor):
        return (f"{name} is {describe(got)}", "each memory is a (b, M, dim) tensor")
    if not runs and old is not None and _same(got, old):
        return (f"{name} was carried over as it was", "as it was, the memory holds an older segment's states, and "
                "in the next segment rotary puts them just before the current tokens: a hole that no full pass "
                "has. The skipped layer's input still passes through: record it with stack.record(k, x)")
    if bool((got == 0).all()):
        return (f"{name} is all zeros", "zeroed: the model hides all-zero slots, so the layer loses its history; "
                "record its input, which passes through the skipped layer")
    if runs and x_out is not None and _same(got, update_memory(old, stack.record(k, x_out), max_mem_len)):
        return (f"{name} holds the normed output of layer {k}", "record the layer's input, before stack.run: "
                "the keys of layer k are its pre-norm of its input")
    return (f"{name} differs from update_memory(mems[{k}], stack.record({k}, x), max_mem_len)",
            "layer k's new memory is update_memory(its old memory, stack.record(k, its input), max_mem_len)")


def _segment_problem(stack: LayerStack, x: Tensor, mems, ran, max_mem_len: int, got, s: int
                     ) -> tuple[str, str] | None:
    where = f"segment {s}"
    if not isinstance(got, tuple) or len(got) != 2:
        return f"run_layers returned {describe(got)}", "return a pair (x, new_mems)"
    x_got, new_mems = got
    depth = len(ran)
    if not isinstance(new_mems, (list, tuple)):
        return f"new_mems is {describe(new_mems)}", f"new_mems is a list of {depth} memories, one per layer"
    if len(new_mems) != depth:
        hint = ("one memory per layer, in layer order: x-transformers' loop `continue`s before a skipped layer "
                "records, so its list comes back one short per skipped layer and every later memory shifts down a "
                "layer" if len(new_mems) < depth else f"one memory per layer: {depth}")
        return f"{where} returned {len(new_mems)} memories for {depth} layers", hint
    ran_layers = [k for k, _ in stack.runs]
    skipped_run = [k for k in ran_layers if not ran[k]]
    if skipped_run:
        return (f"layer {skipped_run[0]} ran in {where} although ran[{skipped_run[0]}] is False",
                "a skipped layer does not run: call stack.run(k, ...) only when ran[k]")
    if ran_layers != [k for k in range(depth) if ran[k]]:
        return (f"{where} ran layers {ran_layers}, expected {[k for k in range(depth) if ran[k]]}",
                "run every layer with ran[k] True once, in order")
    for k, mem in stack.runs:
        expected = None if mems is None else mems[k]
        if expected is None:
            if mem is not None:
                return f"layer {k} read a memory in the first segment", "the first segment has mems=None"
            continue
        if _same(mem, expected):
            continue
        others = [j for j in range(depth) if j != k and _same(mem, mems[j])]
        if others:
            return (f"layer {k} read layer {others[0]}'s memory in {where}",
                    "layer k reads mems[k], whatever was skipped before it: counting only the layers that ran "
                    "hands it the memory of an earlier layer")
        return (f"layer {k} read {describe(mem)} in {where}", f"layer {k} reads mems[{k}]")
    # the library's routing, layer by layer, from the inputs the learner's run produced
    library, x_in, outputs = LayerStack(stack.model), x, {}
    expected_mems = []
    for k in range(depth):
        old = None if mems is None else mems[k]
        expected_mems.append(update_memory(old, library.record(k, x_in), max_mem_len))
        if ran[k]:
            x_in = library.run(k, x_in, old)
            outputs[k] = x_in
    for k in range(depth):
        old = None if mems is None else mems[k]
        problem = _memory_problem(k, new_mems[k], expected_mems[k], old, ran[k], outputs.get(k), stack, max_mem_len,
                                  where)
        if problem:
            return problem
    if not _same(x_got, x_in):
        return (f"the x returned after {where} differs from the last layer's output",
                "return x after the last layer that ran (x itself when none ran)")
    return None


def check_run_layers(run_layers: Callable) -> Verdict:
    """``run_layers(stack, x, mems, ran, max_mem_len)`` -> (x, new_mems), over consecutive segments."""
    for case in ROUTING_CASES:
        depth, batch, segment_len, max_mem_len, patterns = case.args
        model = build_routing_model(depth)
        tokens = example_tokens(segment_len * len(patterns), seed=20 + depth, batch=batch)
        stack = LayerStack(model)
        with torch.no_grad(), one_cpu_thread():
            mems = lib_mems = None
            for s, ran in enumerate(patterns):
                x = model.token_emb(tokens[:, s * segment_len:(s + 1) * segment_len])
                expected_x, lib_mems = library_segment(model, x, lib_mems, ran, max_mem_len)
                stack.runs.clear()
                given = None if mems is None else [mem.clone() for mem in mems]  # kept apart from the reference
                got = call(run_layers, stack, x.clone(), given, list(ran), max_mem_len, copy_args=False)
                problem = _segment_problem(stack, x, mems, ran, max_mem_len, got, s)
                if problem:
                    return case_failed(case, *problem)
                if not _same(got[0], expected_x) or not all(_same(g, e) for g, e in zip(got[1], lib_mems,
                                                                                           strict=True)):
                    return case_failed(case, f"segment {s} differs from xtlab's decoder with the same skips",
                                       "read mems[k] in layer k, record every layer's input")
                mems = lib_mems
    return Verdict.make_pass(f"{len(ROUTING_CASES)} hidden skip patterns (none, all, first, last, alternating "
                             "skipped; depth 1 to 6; 2 to 3 consecutive segments, a skipped layer's memory read "
                             "again later; batch 1 and 2; max_mem_len shorter than a segment) give xtlab's decoder "
                             "with the same skips to 1e-12.")


# --- the catalogue -----------------------------------------------------------------------------------------------

def _routing(read: str = "own", skipped: str = "record", record: str = "input", obey_ran: bool = True) -> Callable:
    def run_layers(stack, x, mems, ran, max_mem_len):
        new_mems, kept = [], 0
        for k, runs in enumerate(ran):
            own = None if mems is None else mems[k]
            mem = own if read == "own" or mems is None else mems[kept]
            if runs or not obey_ran:
                before = x
                x = stack.run(k, x, mem)
                kept += 1
                new_mems.append(update_memory(own, stack.record(k, x if record == "output" else before),
                                              max_mem_len))
            elif skipped == "record":
                new_mems.append(update_memory(own, stack.record(k, x), max_mem_len))
            elif skipped == "carry":
                new_mems.append(update_memory(own, stack.record(k, x), max_mem_len) if own is None else own)
            elif skipped == "zero":
                new_mems.append(torch.zeros_like(update_memory(own, stack.record(k, x), max_mem_len)))
            else:
                new_mems.append(None)
        return x, new_mems
    return run_layers


ROUTING_MISTAKES = (
    Mistake("x-transformers' loop: kept layers pop the memories in order, skipped layers record nothing",
            xtransformers_routing, "x-transformers' loop"),
    Mistake("reads by position among the layers that ran", _routing(read="kept"), "counting only the layers"),
    Mistake("a skipped layer's memory carried over as it was (a hole in its history)", _routing(skipped="carry"),
            "no full pass"),
    Mistake("a skipped layer's memory dropped (None)", _routing(skipped="drop"), "dropped"),
    Mistake("a skipped layer's memory zeroed", _routing(skipped="zero"), "zeroed"),
    Mistake("records the layer's output instead of its input", _routing(record="output"), "record the layer's input"),
    Mistake("runs every layer, ignoring ran", _routing(obey_ran=False), "a skipped layer does not run"),
)
