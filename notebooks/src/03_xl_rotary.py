# %% [markdown]
# # Lab 03 — XL memories and rotary positions
#
# Transformer-XL recurrence lets each attention layer keep the hidden states of the previous segment as
# *memories* that the current tokens can attend to. Combined with rotary position embeddings, a user found that
# `mems=None` and explicit all-zero memories gave different outputs. [Article 004](../xtlab/articles/004_xl_rotary.md)
# (its claims, numbered, are on that page) blamed three things: memory positions, the memory mask, and the
# normalisation stage of memories. This lab tries each one.
#
# **Objectives.** After this lab you can
#
# - say where a layer records its memory, where it is concatenated to the keys, masked, and positioned;
# - judge any XL design with one exact invariant: segments with memories give the logits of one full causal pass;
# - tell the two valid recording designs from the two broken ones;
# - show that rotary only needs the right *offsets* between memories and current tokens, not a given start;
# - explain what layer dropout does to memories in the installed x-transformers;
# - write the segmented pass a trainer runs (positions, memory update at the right stage, detach) and the
#   per-sample memory mask of a batch of streams yourself, and route memories under layer dropout so that every
#   layer keeps its own, each checked on hidden cases.
#
# **Estimated time:** 55 minutes. Every check runs on the CPU in float64, so the verdicts are the same on every
# machine. A correct design agrees to float64 rounding, printed as `< 1e-12` (the tolerance); anything above it is
# a real difference.

# %%
import torch

from xtlab import default_device, describe_device
from xtlab.course import ArticleAudit, Claim, verdict_of
from xtlab.labs import xl_rotary as lab
from xtlab.model import AttentionLayers
from xtlab.model.attention import SelfAttention
from xtlab.model.attention_layers import update_memory
from xtlab.widgets import predict, predict_verdicts, show_source

device = default_device()
print(f"device: {describe_device(device)}")

# %% [markdown]
# ## 1. The mechanism
#
# In xtlab's `AttentionLayers.forward` each attention layer records its memory (the marked `recorded` line: the
# normed input of the layer), concatenates it after the old memory and keeps the last `max_mem_len` positions,
# detached. It hands the old memory to attention together with a key mask.

# %%
show_source(AttentionLayers.forward, emphasize=["recorded", "update_memory(", "key_mask("])

# %% [markdown]
# The key mask hides memory slots that are entirely zero (empty), unless you pass your own `mem_masks`:

# %%
show_source(AttentionLayers.key_mask, emphasize=["amax", "torch.cat"])

# %% [markdown]
# And attention builds the rotary positions of all `M + T` keys `[memory ; current]` in one call; queries take
# the last `T` of them:

# %%
show_source(SelfAttention.rotations, emphasize=["memory_positions"])

# %% [markdown]
# ## 2. Where to record a memory
#
# A layer's memory can be taken from the residual stream *before* its pre-norm or *after* it. x-transformers
# records before the norm and applies the layer's pre-norm to the memory when it uses it; xtlab records after the
# norm and uses the memory as is. Both feed attention a memory normalised exactly once. Two other designs do not:
# recording after the norm and normalising again at use (twice), or recording before the norm and using it as is
# (recorded and used at different stages).
#
# `lab.forward_with_design` runs xtlab's own modules with the recording step swapped (with xtlab's design it is
# exactly `model(..., return_mems=True)`, which the lab's tests check). The two marked lines are all that differ:

# %%
show_source(lab.forward_with_design, emphasize=["recorded =", "used ="])

# %% [markdown]
# The judge: run 32 tokens through a tiny rotary decoder (dim 32, depth 2) once, then again as 4 segments of 8
# that pass their memories on. With `max_mem_len` at least as long as the history, a correct design gives the
# same logits to float64 rounding. The model's norm gains are drawn at random, as after training.

# %%
design_question = predict("Which recording designs keep segmented = full?", {
    "only xtlab's (record after the norm, use as is)": frozenset({"record after the norm, use as is"}),
    "xtlab's and x-transformers' (each normalises the memory once)": frozenset(
        {"record after the norm, use as is", "record before the norm, normalise at use"}),
    "all four: a memory is a memory": frozenset(lab.DESIGNS),
})
design_question

# %%
panel = lab.designs_panel()
design_question.gate(lambda: panel, what="the panel of the four designs")

# %%
designs = lab.all_designs(segment_len=8, num_segments=4, max_mem_len=64)
untrained = {p.label: p for p in lab.all_designs(unit_gains=True)}
twice = untrained["record after the norm, normalise again at use"]


def show_designs():
    for proof in designs:
        print(f"{proof.label:<46} ({lab.DESIGNS[proof.label].who}): worst |segmented - full| "
              f"{lab.shown_diff(proof.worst)}, equal: {proof.equal}")
    print(f"with every norm gain at 1, normalising twice is off by only {lab.shown_diff(twice.worst)}, still not "
          f"equal: {not twice.equal}")


design_question.gate(show_designs, what="the table of the four designs")

# %%
keep = frozenset(proof.label for proof in designs if proof.equal)
broken = {p.label: p.worst for p in designs if not p.equal}
design_question.reveal(keep, why="the two designs that normalise the memory exactly once reproduce the full pass; "
                       + "; ".join(f"'{label}' is off by {lab.shown_diff(worst)}" for label, worst in broken.items()))

# %% [markdown]
# The same check on the real x-transformers (installed version printed), whose design records before the norm.
# Its default attention computes the softmax in float32, so the lab builds it with `attn_flash=True` to keep every
# step in float64:

# %%
xt_proof = lab.xtransformers_segmented_vs_full(segment_len=8, num_segments=4)
xtlab_params = sum(p.numel() for p in lab.build_xl_model().parameters())
print(f"x-transformers {xt_proof.version} ({xt_proof.num_params} parameters; xtlab's model: {xtlab_params}): "
      f"worst |segmented - full| {lab.shown_diff(xt_proof.worst)}, equal: {xt_proof.equal}")
on_device = lab.segmented_vs_full(device=device)
print(f"xtlab's design on {describe_device(device)}, float64: equal: {on_device.equal}")

# %% [markdown]
# ## 3. Positions: does the start matter?
#
# Rotary rotates each query and key by an angle proportional to its position, so a score depends only on the
# *difference* of the two positions. In the full pass the M memories are the M tokens just before the segment.
# Three ways to number the `M + T` keys of a segment (queries take the last T positions):
#
# - `arange(-M, T)`: memories at -M..-1, current tokens at 0..T-1;
# - `arange(0, M + T)`: the same numbering moved up by M, so the same offsets;
# - both from 0: memories at 0..M-1 *and* current tokens at 0..T-1, overlapping.
#
# The judge here is one rotary attention head (xtlab's `RotaryEmbedding`), run over M + T hidden states at once
# and as one segment with M memories.

# %%
position_question = predict("Which numberings give the segment the same output as the full pass?", {
    "only arange(-M, T)": ("arange(-M, T)",),
    "arange(-M, T) and arange(0, M + T)": ("arange(-M, T)", "arange(0, M + T)"),
    "all three": tuple(lab.POSITION_SCHEMES),
})
position_question

# %%
panel = lab.positions_panel()
position_question.gate(lambda: panel, what="the panel of the three numberings")

# %%
schemes = lab.position_schemes(num_mems=4, seq_len=8)


def show_schemes():
    for scheme, positions in schemes.positions.items():
        print(f"{scheme:<22} {positions}")
        print(f"{'':<22} offsets of the full pass: {schemes.offsets_kept[scheme]}; max |segment - full| "
              f"{lab.shown_diff(schemes.gap[scheme])}; equal: {schemes.agrees[scheme]}")


position_question.gate(show_schemes, what="the table of the three numberings")

# %%
agreeing = tuple(scheme for scheme, ok in schemes.agrees.items() if ok)
gap = schemes.gap
position_question.reveal(agreeing, why=f"both numberings keep every query-key offset (gaps "
                         f"{lab.shown_diff(gap['arange(-M, T)'])} and {lab.shown_diff(gap['arange(0, M + T)'])}); "
                         f"overlapping the memories on the current tokens changes them (gap "
                         f"{lab.shown_diff(gap['both from 0 (overlap)'])})")

# %% [markdown]
# In the whole model, xtlab's `mem_positions="restart"` switch is the overlap:

# %%
restarted = lab.segmented_vs_full(mem_positions="restart")
print(f"whole model, memories restarted at 0: worst |segmented - full| {lab.shown_diff(restarted.worst)}, "
      f"equal: {restarted.equal}")

# %% [markdown]
# ## 4. `mems=None` against all-zero memories
#
# The user's report. Without a mask, an all-zero memory slot is still a key: its key vector is zero, so it scores
# 0 against every query, and the softmax gives it weight that the real keys lose.

# %%
zero_question = predict("Without a mask, do all-zero memories give the same logits as mems=None?",
                        {"the same logits": True, "different logits": False})
zero_question

# %%
panel = lab.empty_memories_panel()
zero_question.gate(lambda: panel, what="the attention-weights panel")

# %%
empty = lab.empty_memories(num_mems=4, seq_len=8)
xt_zero = lab.xtransformers_zero_memories(num_mems=4, seq_len=8)


def show_empty():
    for setting, name in (("mask on", "slot mask"), ("mask off", "no mask")):
        print(f"{name}: max |logits(zero mems) - logits(mems=None)| {lab.shown_diff(empty.max_abs_diff[setting])}; "
              f"weight on memory columns per query {empty.memory_weight[setting]:.2f}")
    print("rebuilt weights reproduce the layer's output:", empty.weights_reproduce_layer)
    print(f"installed x-transformers: without mem_masks {lab.shown_diff(xt_zero['no mem_masks'])}; with an "
          f"all-False mem_masks {lab.shown_diff(xt_zero['all-False mem_masks'])}")


zero_question.gate(show_empty, what="the measured differences")

# %%
moved = lab.shown_diff(empty.max_abs_diff["mask off"])
zero_question.reveal(empty.max_abs_diff["mask off"] < lab.EXACT_TOLERANCE,
                     why=f"without the mask the zero keys take {empty.memory_weight['mask off']:.2f} of each "
                         f"query's attention weight; the logits move by {moved}")

# %% [markdown]
# The article names three causes of this mismatch: discontinuous rotary positions, a mask that cannot tell no
# memory from zero memory, and memories stored and used at different normalisation stages. Each one can be tried on
# the mismatch itself: the same zero memories, without a mask, under both numberings of the memory keys and under
# all four recording designs of section 2; then with the slot mask.

# %%
causes = lab.zero_memory_causes(num_mems=4, seq_len=8)
for mode, cause_gap in causes.by_positions.items():
    print(f"positions {mode:<11} no mask: max |zero mems - mems=None| {lab.shown_diff(cause_gap)}")
for design, cause_gap in causes.by_design.items():
    print(f"{design:<46} no mask: max |zero mems - mems=None| {lab.shown_diff(cause_gap)}")
print(f"slot mask (continuous positions, xtlab's design): max |zero mems - mems=None| "
      f"{lab.shown_diff(causes.masked)}")

# %% [markdown]
# A zero memory gives zero keys and zero values: rotating zero at any position gives zero, and xtlab's norms have
# no bias, so normalising zero at any stage gives zero. Only the mask changes anything.
#
# %% [markdown]
# Where must the mask decide: per slot, per row, or once for the whole tensor? One batch of three rows answers it:
# a fresh sequence (all-zero memory), a continuing one (full memory), and one whose memory buffer is only partly
# filled (zero slots, then real ones). Each row must give the logits it gives with exactly its real memory.

# %%
mask_gaps = {rule: lab.mask_rows_gap(mask) for rule, mask in lab.MASK_RULES.items()}
for rule, gaps in mask_gaps.items():
    print(rule)
    for row, row_gap in gaps.items():
        print(f"    {row:<40} max |diff| {lab.shown_diff(row_gap)}")

# %% [markdown]
# ## 5. Layer dropout meets XL memories in x-transformers
#
# Layer dropout skips whole layers at random in training. Read the order of four steps in the installed
# x-transformers' layer loop (line numbers from its source file):

# %%
steps = lab.loop_lines()
for step, (line, text) in sorted(steps.items(), key=lambda item: item[1][0]):
    print(f"line {line}: {step:<36} {text}")
skip = steps["layer dropout skips the layer"][0]
print("the skip comes before the pop and before the recording:",
      skip < steps["the layer pops its memory"][0] and skip < steps["the layer records its hidden state"][0])

# %% [markdown]
# A dropped layer `continue`s before it pops its memory from the list and before it records its hidden state.
# The experiment: segment A runs in eval mode and returns one memory per layer; segment B runs in training mode
# with those memories and a seed for which layer dropout drops exactly attention layer 0. Hooks record which
# memory object each layer receives and which layer's hidden states each returned memory holds.

# %%
routing_question = predict("x-transformers drops layer 0 in a training segment. Which memory does layer 1 attend to?",
                           {"its own (memory 1)": 1, "layer 0's (memory 0)": 0, "none": None})
routing_question

# %%
routings = {library: lab.memory_routing(library, dropped_layer=0, depth=3) for library in lab.LIBRARIES}
xt = routings["x-transformers"]


def show_routings():
    for library, r in routings.items():
        received = ["none" if got is None else got for got in r.received]
        print(f"{library} {r.version}: dropped layers {list(r.dropped)}; layers 0..2 received memories {received}")
        print(f"    {r.returned_count} memories returned; they continue memories {list(r.returned_old)} with the "
              f"hidden states of layers {list(r.returned_new)}; each layer keeps its own: {r.each_layer_gets_its_own}")
    status = "fixed" if xt.each_layer_gets_its_own else "still present"
    print(f"x-transformers {xt.version}: the misrouting is {status}; layers that ran with another layer's memory: "
          f"{list(xt.misrouted)}")


routing_question.gate(show_routings, what="which memory each layer received")

# %%
routing_question.reveal(xt.received[1], why=f"layer 0 skipped its pop, so layer 1 popped the first memory in the "
                        f"list; the returned list holds {xt.returned_count} memories, the hidden states of layers "
                        f"{list(xt.returned_new)} appended to memories {list(xt.returned_old)}")

# %% [markdown]
# So in the next segment every memory is one layer off, and the last layer gets none. xtlab records every
# layer's memory, dropped or not. The panel drops another layer or changes the depth:

# %%
panel = lab.routing_panel()
panel

# %% [markdown]
# ## 6. Audit the article
#
# The claims of [article 004](../xtlab/articles/004_xl_rotary.md), cited by their numbers on that page. Commit a
# verdict for each first (the rules are printed with the question), then run the audit: every verdict is computed
# from the cells above. Claim 12 (a markedly larger effective context window) is not measured in this lab.

# %%
audit_question = predict_verdicts("004", list(range(1, 12)))
audit_question

# %%
article_gap = lab.segment_attention_gap(lab.article_order(2, 5), num_mems=2, seq_len=5)
tol = lab.EXACT_TOLERANCE
design_ok = {p.label: p.equal for p in designs}
whole_tensor = mask_gaps["one flag for the whole tensor: torch.any(mem)"]
unmasked = empty.max_abs_diff["mask off"]
continuous = lab.segmented_vs_full()
audit_question.reveal(ArticleAudit("004", (
    Claim(1, verdict_of(unmasked >= tol and xt_zero["no mem_masks"] >= tol),
          f"xtlab without a mask: {lab.shown_diff(unmasked)}; installed x-transformers without mem_masks: "
          f"{lab.shown_diff(xt_zero['no mem_masks'])} (section 4)."),
    Claim(2, verdict_of(causes.by_positions["continuous"] < tol and causes.by_positions["restart"] < tol),
          f"zero memories give zero keys, whatever their positions: the mismatch is "
          f"{lab.shown_diff(causes.by_positions['continuous'])} with continuous positions and "
          f"{lab.shown_diff(causes.by_positions['restart'])} with restarted ones (section 4). Discontinuous "
          f"positions break segmented = full instead (section 3)."),
    Claim(3, verdict_of(unmasked >= tol and causes.masked < tol),
          f"the slot mask alone takes the mismatch from {lab.shown_diff(unmasked)} to "
          f"{lab.shown_diff(causes.masked)} (section 4)."),
    Claim(4, verdict_of(min(causes.by_design.values()) < tol),
          f"the caller's zero memories are never recorded, and the norm of zero is zero: the mismatch is "
          f"{lab.shown_diff(max(causes.by_design.values()))} under all four recording designs (section 4). "
          f"Mismatched stages break segmented = full instead (section 2)."),
    Claim(5, verdict_of(gap["arange(-M, T)"] < tol and gap["both from 0 (overlap)"] >= tol,
                        needs_unstated_condition=gap["arange(0, M + T)"] < tol),
          f"continuity is what matters: arange(-M, T) {lab.shown_diff(gap['arange(-M, T)'])}, overlap "
          f"{lab.shown_diff(gap['both from 0 (overlap)'])}; arange(0, M + T), with no negative position, is as "
          f"exact ({lab.shown_diff(gap['arange(0, M + T)'])}) (section 3).",
          condition="the current tokens are numbered from 0; rotary sees only differences"),
    Claim(6, verdict_of(article_gap < tol),
          f"that order is newest-first; keys are stored oldest first, and one head with it differs from the full "
          f"pass by {lab.shown_diff(article_gap)}; arange(-2, 5) = {list(range(-2, 5))} is exact."),
    Claim(7, verdict_of(empty.max_abs_diff["mask on"] < tol and xt_zero["all-False mem_masks"] < tol),
          f"with a mask hiding the zero slots they equal mems=None: xtlab "
          f"{lab.shown_diff(empty.max_abs_diff['mask on'])}, x-transformers' all-False mem_masks "
          f"{lab.shown_diff(xt_zero['all-False mem_masks'])}; slots the mask marks True are attended (section 4)."),
    Claim(8, verdict_of(design_ok["record after the norm, use as is"]
                        and design_ok["record before the norm, normalise at use"]
                        and not design_ok["record before the norm, use as is"]
                        and not design_ok["record after the norm, normalise again at use"]),
          "the two designs that store and apply at one stage (both after the norm, or both before it) are exact; "
          "storing before and applying after, or storing after and normalising again, are not (section 2)."),
    Claim(9, verdict_of(gap["arange(-M, T)"] < tol and continuous.equal),
          f"arange(-M, T) keeps every offset in one head ({lab.shown_diff(gap['arange(-M, T)'])}) and in the whole "
          f"model (worst |segmented - full| {lab.shown_diff(continuous.worst)}) (sections 2 and 3)."),
    Claim(10, verdict_of(whole_tensor["continuing row: full memory"] < tol,
                         needs_unstated_condition=whole_tensor["fresh row: all-zero memory"] >= tol),
          f"torch.any(mem) is one flag for the whole batch: the continuing row is exact "
          f"({lab.shown_diff(whole_tensor['continuing row: full memory'])}), but the fresh row next to it is off "
          f"by {lab.shown_diff(whole_tensor['fresh row: all-zero memory'])} (section 4).",
          condition="every row of the batch has memories, or none has"),
    Claim(11, verdict_of(empty.max_abs_diff["mask on"] < tol),
          f"with the mask, zero memories equal mems=None to {lab.shown_diff(empty.max_abs_diff['mask on'])} "
          f"(section 4)."),
)))

# %% [markdown]
# ## Exercise 1: the segmented pass
#
# Write the loop a trainer runs over a long sequence. `lab.SegmentRunner(model)` runs the lab's decoder on one
# segment; everything around it is yours. Its interface (no more of its source than this):

# %%
print(lab.SegmentRunner.__doc__)

# %% [markdown]
# One call, the first segment of a 24-token sequence: no memory yet, so the 6 keys are numbered 0..5.

# %%
run_segment = lab.SegmentRunner(lab.build_xl_model())
tokens = lab.example_tokens(24, batch=2)
logits, hiddens = run_segment(tokens[:, :6], None, list(range(6)))
print(f"logits {tuple(logits.shape)}; {len(hiddens)} hiddens, each {tuple(hiddens[0].shape)}; "
      f"layer 0 normed: {tuple(run_segment.norm(0, hiddens[0]).shape)}")

# %% [markdown]
# Write `segmented_pass(run_segment, tokens, segment_len, max_mem_len)`: split `tokens` (b, n) into segments of
# `segment_len` (the last may be shorter); run each with every layer's memory and the rotary positions of its
# `M + T` keys `[memory ; current]`; after each segment, update every layer's memory: `[its memory ; its states]`,
# keep the last `max_mem_len` positions (none at 0), detach; return every segment's logits concatenated along the
# positions, `(b, n, num_tokens)`, with their graph (a trainer calls backward on them). `run_segment` gives a
# memory to attention as it is, next to the normed current tokens.
#
# The checker runs hidden cases (`max_mem_len` 0, shorter than, equal to and longer than a segment, and covering
# the whole sequence; short last segments; batch 1 and 3; training mode) against the library's own segmented pass
# (one full causal pass where the memory covers the history) to 1e-12, reads every call you make, and checks that
# backward of one segment never reaches the one before.


# %%
def segmented_pass(run_segment, tokens, segment_len, max_mem_len):
    ### BEGIN SOLUTION
    mems, outputs = None, []
    for start in range(0, tokens.shape[1], segment_len):
        segment = tokens[:, start:start + segment_len]
        num_mems = 0 if mems is None else mems[0].shape[1]
        logits, hiddens = run_segment(segment, mems, torch.arange(-num_mems, segment.shape[1]))
        outputs.append(logits)
        new_mems = []
        for k, hidden in enumerate(hiddens):
            recorded = run_segment.norm(k, hidden)
            both = recorded if mems is None else torch.cat((mems[k], recorded), dim=1)
            new_mems.append(both[:, both.shape[1] - min(max_mem_len, both.shape[1]):].detach())
        mems = new_mems
    return torch.cat(outputs, dim=1)
    ### END SOLUTION


# %%
lab.check("segmented_pass", segmented_pass)

# %% [markdown]
# ## Exercise 2: per-sample masks for a batch of streams
#
# The article decides "is there a memory" once for the whole batch (`torch.any(mem)`). A server that batches
# streams cannot: one stream has just started (no memory), another has seen 3 tokens, another 6. The batch below
# pads every memory to the longest with zeros, before the real slots; each row must give the logits of its stream
# run alone. How far the batch-wide rule moves each row:

# %%
batch_gaps = lab.row_gaps(lengths=(None, 3, 6))
for rule, row_gap in batch_gaps.items():
    print(f"{rule:<30} max |batched - alone| per row (fresh, 3 memories, 6 memories): "
          f"{[lab.shown_diff(g) for g in row_gap]}")

# %% [markdown]
# Write `batch_memories(streams, num_layers, dim)`: `streams[i]` is `None` (a stream that just started) or a list
# with one `(L_i, dim)` memory per layer. Return `(mems, mem_masks)`: per layer a `(b, M, dim)` tensor with `M` the
# longest `L_i`, each row's memory left-padded with zeros (its real slots end just before its current tokens, where
# rotary puts them), and a `(b, M)` bool mask, True for each row's real slots. The model gets them as
# `model(current, mems=mems, mem_masks=mem_masks)`. For the batch above the mask has 6 columns, and the row with 3
# memories is `[False, False, False, True, True, True]`. The checker runs hidden batches, one of them with a real
# memory that happens to be all zero (claim 7: zero memory that must be attended), and compares every row with
# its stream alone.


# %%
def batch_memories(streams, num_layers, dim):
    ### BEGIN SOLUTION
    lengths = [0 if stream is None else stream[0].shape[0] for stream in streams]
    longest = max(lengths)
    mems = []
    for k in range(num_layers):
        layer = torch.zeros(len(streams), longest, dim, dtype=torch.float64)
        for row, stream in enumerate(streams):
            if stream is not None and lengths[row]:
                layer[row, longest - lengths[row]:] = stream[k]
        mems.append(layer)
    mem_masks = torch.arange(longest) >= longest - torch.tensor(lengths)[:, None]
    return mems, mem_masks
    ### END SOLUTION


# %%
lab.check("batch_memories", batch_memories)

# %% [markdown]
# ## Exercise 3: memory routing under layer dropout
#
# Section 5 found that in x-transformers a skipped layer hands its memory to the next layer that runs. Write the
# layer loop of one segment yourself, so that layer dropout and memories can be used together. `lab.LayerStack`
# runs one attention layer of the lab's decoder at a time (interface only):

# %%
print(lab.LayerStack.__doc__)

# %% [markdown]
# A new memory is made by the library's `update_memory` (the same one `AttentionLayers.forward` uses):

# %%
show_source(update_memory)

# %% [markdown]
# Write `run_layers(stack, x, mems, ran, max_mem_len)`: `x` (b, T, dim) is the segment's residual stream, `mems`
# None (first segment) or one memory per attention layer, `ran[k]` whether layer k runs in this segment (a skipped
# layer adds nothing to `x`). Return `(x, new_mems)`: `x` after the last layer, and one new memory per layer,
# `update_memory(mems[k], ..., max_mem_len)`, so that the next segment's layer k finds the states its keys would
# have had on the tokens just before it, whichever layers ran. The checker runs hidden skip patterns (none, all,
# first, last and alternating layers skipped, depth 1 to 6, 2 to 3 consecutive segments so that a skipped
# layer's memory is read again later, batch 1 and 2, `max_mem_len` shorter than a segment) against xtlab's
# decoder with the same skips, and reads which memory each layer got.


# %%
def run_layers(stack, x, mems, ran, max_mem_len):
    ### BEGIN SOLUTION
    new_mems = []
    for k, runs in enumerate(ran):
        mem = None if mems is None else mems[k]
        new_mems.append(update_memory(mem, stack.record(k, x), max_mem_len))
        if runs:
            x = stack.run(k, x, mem)
    return x, new_mems
    ### END SOLUTION


# %%
routing_verdict = lab.check("run_layers", run_layers)
routing_verdict

# %% [markdown]
# Your answer decides a question, whichever way you wrote it: a skipped layer adds nothing to the residual stream,
# but the segment's tokens still pass it. Commit what one full pass says before the two tables below.

# %%
skip_question = predict("Layer 0 is skipped in segment 2 of 3 and runs again in segment 3. Which memory must it "
                        "read in segment 3 to give the logits of one full pass?", {
                            "its memory of segment 1, carried over as it was": "carried",
                            "segment 1's states, then segment 2's input recorded though the layer did not run":
                                "recorded",
                            "none: a skipped layer's memory is dropped": "dropped",
                        })
skip_question

# %% [markdown]
# Your routing (the library's, while yours does not pass yet) next to the installed x-transformers, on section 5's
# pattern: segment A runs all 3 layers, segment B skips layer 0. Which of A's memories each layer read in B, and
# what each returned memory holds (the layer whose A memory it continues, and whose B input it appended):

# %%
passed = routing_verdict.passed
ours = lab.which_memories(run_layers if passed else lab.solution_run_layers, depth=3, skipped=0)
theirs = lab.memory_routing("x-transformers", dropped_layer=0, depth=3)
xt_read = ["-" if k in theirs.dropped else got for k, got in enumerate(theirs.received)]


def show_routing_table():
    print(f"{'':<16} read by layers 0..2    returned: continues / appended")
    who = "your routing" if passed else "xtlab's routing"
    print(f"{who:<16} {str(ours['read']):<22} {ours['returned_old']} / {ours['returned_new']}")
    print(f"{'x-transformers':<16} {str(xt_read):<22} {list(theirs.returned_old)} / {list(theirs.returned_new)}")


skip_question.gate(show_routing_table, what="which memory each layer read")

# %% [markdown]
# Why record the input of a skipped layer instead of leaving its memory as it was? Run 3 segments of 4 where layer
# 0 is skipped in the second only, and compare with one causal pass over all 12 tokens in which layer 0 adds
# nothing at the second segment's positions (every position is still a key of layer 0):

# %%
against_full = lab.routing_vs_full(depth=3, segment_len=4)


def show_against_full():
    for name, full_gap in against_full.items():
        print(f"{name:<44} max |segmented - full| {lab.shown_diff(full_gap)}")


skip_question.gate(show_against_full, what="each routing against the full pass")

# %%
answers = {"every layer records its input": "recorded", "a skipped layer's memory carried unchanged": "carried",
           "a skipped layer's memory dropped": "dropped"}
exact = [answers[name] for name, full_gap in against_full.items() if full_gap < lab.EXACT_TOLERANCE]
recorded, carried, dropped = (lab.shown_diff(against_full[name]) for name in answers)
skip_question.reveal(exact[0] if len(exact) == 1 else None,
                     why=f"the full pass has layer 0's keys at every position, run or skipped: recording its input "
                         f"is exact ({recorded}); carried over as it was, its memory has a hole ({carried}); dropped, "
                         f"it loses segment 1 ({dropped})")

# %% [markdown]
# ## Why it matters
#
# - Segmented = full, in float64, is a complete test of an XL implementation: positions, masks, recording stage
#   and update are all inside it, and `max_mem_len=0` must keep nothing (`[:, -0:]` keeps everything).
# - Rotary needs the right offsets between memories and current tokens, not a particular start.
# - A memory mask decides per row and slot, from what each stream holds, not from the values: one flag for a
#   whole batch mixes fresh and continuing rows, and a content rule hides a real memory that happens to be zero.
# - With x-transformers, layer dropout and XL memories together shift memories by a layer: keep them apart, or
#   keep the memories per layer yourself. A skipped layer still sees the tokens pass: record its input, or its
#   memory gets a hole that no full pass has.

# %% [markdown]
# ## Next
#
# Lab 04 (`04_optimizer_groups.ipynb`) asks which parameters should get weight decay, memory key/values and
# memory tokens included.
