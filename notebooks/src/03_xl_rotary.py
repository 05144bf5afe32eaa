# %% [markdown]
# # Lab 03 — XL memories and rotary positions
#
# A user combined Transformer-XL recurrence (each layer keeps the hidden states of the previous segment as
# *memories* its keys can attend to) with rotary position embeddings. They noticed that `mems=None` and
# explicit all-zero memories gave different outputs, which should never happen: an empty memory is no memory.
#
# Three things were wrong:
#
# 1. memory keys were not positioned *before* the current tokens;
# 2. all-zero memory slots were attended to;
# 3. memories were recorded at a different normalisation stage from the one at which they were used.
#
# xtlab's `Decoder` keeps each bug behind a teaching switch (`mem_positions="restart"`, `mask_empty_mems=False`,
# `mem_record="residual"`), so you can see each failure, each fix, and at the end a proof that cannot be argued
# with: a sequence run segment by segment with memories gives the same logits as one full pass.

# %%
from importlib.metadata import version

from xtlab import default_device, describe_device
from xtlab.labs import xl_rotary as lab
from xtlab.model.rotary import memory_positions
from xtlab.widgets import predict, show_source

device = default_device()
print(f"device: {describe_device(device)}")

# %% [markdown]
# ## 1. Where do memory keys sit?
#
# A layer attends over `[memory ; current]`: M memory keys, the hidden states of the previous segment, then the T
# keys of the current segment. Rotary embeddings need a position for each. The memories came *before* the
# current tokens, so they belong at `-M, ..., -1`, and the current tokens at `0, ..., T-1`: `arange(-M, T)`.
#
# The bug restarts the count: memories get `0, ..., M-1`, the same positions as the first current tokens.
# Move the sliders: orange dots are memory keys, blue dots current keys.

# %% [markdown]
# The mechanism, in xtlab's rotary module: one line builds the positions of all `M + T` keys.

# %%
show_source(memory_positions, emphasize=["arange"])

# %%
panel = lab.key_positions_panel()
panel

# %% [markdown]
# Keys are stored oldest first, so the continuous positions must grow by one from key to key. A widely read
# write-up of this fix lists the positions for M = 2 as `[-1, -2, 0, ...]`: the memories newest-first. The cell
# below prints xtlab's vector for M = 2 and checks both orders.

# %%
positions = lab.key_positions(num_mems=2, seq_len=4)
print("continuous, M=2, T=4:", positions.continuous_list)
print("restarted,  M=2, T=4:", [int(p) for p in positions.restart])
print("keys one step apart, oldest to newest:", positions.strictly_increasing)
write_up = [-1, -2, 0, 1, 2, 3]
print("write-up order [-1, -2, 0, ...] equals arange(-M, T):", write_up == positions.continuous_list)

# %% [markdown]
# ## 2. Why the positions matter for rotary
#
# Rotary rotates a query at position i and a key at position j so that their dot product depends only on i - j.
# To see only the positions, give every query and key the same all-ones vector: then the score is a fixed
# function f of the distance rotary is told about (the gray line), computed with xtlab's own `RotaryEmbedding`.
#
# Each dot is one (query, key) pair that causal attention allows, drawn at its *true* distance. With continuous
# positions every dot, memory or current, sits on the line. With restarted positions the memory keys (orange
# crosses) land on the wrong distances: they are scored as if they overlaid the current tokens, some even as if
# they were in the future.

# %%
panel = lab.rotary_scores_panel()
panel

# %%
for mode in ("continuous", "restart"):
    scores = lab.rotary_scores(num_mems=4, seq_len=8, mode=mode)
    memory_pairs = int(scores.is_memory.sum())
    print(f"{mode:>10}: every pair on the curve: {scores.max_error < 1e-9}; memory pairs at the wrong distance: "
          f"{scores.memory_pairs_misplaced} of {memory_pairs}; placed in the future: "
          f"{scores.memory_keys_seen_in_future}")

# %% [markdown]
# ## 3. The proof: segmented equals full
#
# Take a tiny rotary XL decoder (dim 32, depth 2) and a 32-token sequence. Run it once over the whole sequence.
# Then run it again in 4 segments of 8, passing each segment the memories the previous one returned. With
# `max_mem_len` at least as long as the history, the memories hold exactly what the full pass's keys hold, so the
# logits must agree up to rounding.
#
# The proof runs on the CPU in float64, whatever device this notebook uses: float64 rounding of a model this
# small stays far below the dotted 1e-12 line (the tolerance), so anything above it is a real difference, and the
# printed verdicts are the same on every machine. Try `max_mem_len` shorter than the history, and the
# zero-memory start.

# %%
panel = lab.proof_panel()
panel

# %%
for start_from_zeros in (False, True):
    print("first segment gets", "all-zero memories:" if start_from_zeros else "mems=None:")
    for config in lab.CONFIGS:
        proof = lab.segmented_vs_full(config, segment_len=8, num_segments=4, start_from_zeros=start_from_zeros)
        worst = "below 1e-12" if proof.equal else f"{proof.worst:.2g}"
        print(f"  {config:<24} equal to the full pass: {str(proof.equal):<5}  worst |difference|: {worst}")

# %% [markdown]
# Continuous positions with normed memories and the empty-memory mask reproduce the full pass; restarted
# positions and residual-stage recording break it from the second segment on, where memories are first used. The
# unmasked zero memories only matter when zero slots are present: from the zero start they break even segment 1.
#
# The same proof on this notebook's device, in float32, where rounding is larger (so the tolerance is 1e-4):

# %%
import torch

for config in ("correct", "restarted positions"):
    proof = lab.segmented_vs_full(config, device=device, dtype=torch.float32)
    print(f"{config:<20} on the device in float32, worst |difference| below 1e-4: {proof.worst < 1e-4}")

# %% [markdown]
# ## 4. `mems=None` against all-zero memories
#
# This is the user's report. Without a mask, an all-zero memory slot is still a key: its key vector is zero, so
# it scores 0 against every query, and the softmax gives it weight that real keys lose. With the mask
# (`mask_empty_mems=True`, xtlab's default) a slot whose vector is entirely zero cannot be attended.
#
# The heatmaps are the attention weights of the first layer, averaged over heads. SDPA does not return its
# weights, so the experiment rebuilds them from the layer's own `to_qkv`, rotary module and `attention_mask`, and
# checks that the rebuilt weights reproduce the layer's output.

# %% [markdown]
# Before the numbers: commit to a prediction.

# %%
zero_memory_question = predict("Without the mask, do all-zero memories give the same logits as mems=None?",
                               {"the same logits": True, "different logits": False})
zero_memory_question

# %%
panel = lab.empty_memories_panel()
panel

# %%
result = lab.empty_memories(num_mems=4, seq_len=8)
for setting in ("mask on", "mask off"):
    diff = result.max_abs_diff[setting]
    shown = "below 1e-12" if diff < 1e-12 else f"{diff:.2g}"
    print(f"{setting}: max |logits(zero mems) - logits(mems=None)| {shown}; "
          f"weight on memory columns per query {result.memory_weight[setting]:.2g}")
print("rebuilt weights reproduce the layer's output:", result.weights_reproduce_layer)

# %%
zero_memory_question.reveal(result.max_abs_diff["mask off"] < 1e-12,
                            why=f"without the mask the zero keys take {result.memory_weight['mask off']:.2g} of "
                                "each query's attention weight away from the real keys")

# %% [markdown]
# ## 5. Layer dropout meets XL memories
#
# With layer dropout, a training pass may skip an attention layer. What happens to that layer's memory?
# In xtlab every attention layer records its memory even when it is skipped, so layer k always receives layer k's
# memory. The experiment below runs the same three segments on xtlab and on the real `x_transformers` package:
# segment 1 in training mode, with a seed for which layer dropout skips exactly one attention layer (x-transformers
# draws from Python's `random`, xtlab from torch's CPU generator; `seed_everything` seeds both), then two segments
# in eval mode. Hooks record, by exact equality, which layer recorded each returned memory and which memory each
# layer then receives.

# %%
panel = lab.routing_panel()
panel

# %%
print(f"x-transformers {version('x-transformers')}")
for library in ("xtlab", "x-transformers"):
    routing = lab.memory_routing(library, skipped_layer=0, depth=3)
    received = ["none" if s is None else s for s in routing.received_from]
    print(f"{library}: segment 1 skipped attention layer(s) {list(routing.skipped_first)}; memories returned per "
          f"segment {list(routing.returned_counts)}")
    print(f"    next segment, layers 0..2 received the memory recorded by layer {received}; "
          f"each layer gets its own: {routing.each_layer_gets_its_own}")

# %% [markdown]
# Read the lines above. On the installed x-transformers, a dropped layer returns no memory, so the list is
# shorter; in the next segment each layer pops the next memory in the list, so the layers after the
# gap receive another layer's hidden states, and the last layer receives none. The list stays short in later
# segments too. If you use layer dropout with XL memories in x-transformers, keep the memories per layer yourself.

# %% [markdown]
# ## Why it matters
#
# - Rotary scores depend only on the distance it is told about: give memories the wrong positions and they are
#   read as the wrong tokens, with no error anywhere.
# - An empty memory must be masked, or "no memory" and "zero memory" are different models.
# - The memory must be recorded at the stage where it is used (here after the pre-norm); record it earlier and
#   it is fed in at the wrong scale.
# - Equality with a full pass is the cheapest complete test of an XL implementation: one line, no tolerance
#   argument, float64.

# %% [markdown]
# ## Exercise 1: the position vector
#
# Write `positions_with_memory(M, T)` returning the rotary positions of the `M + T` keys `[memory ; current]`,
# oldest first. The checker tries several (M, T), M = 0 included.


# %%
def positions_with_memory(M, T):
    ### BEGIN SOLUTION
    return list(range(-M, T))
    ### END SOLUTION


# %%
lab.check("positions_with_memory", positions_with_memory)

# %% [markdown]
# ## Exercise 2: equal or not?
#
# For each pair of configurations below, predict whether the logits are equal (to float64 rounding): `True` or
# `False`. The checker runs each pair live and explains every wrong prediction.

# %%
for label, question in lab.EQUALITY_QUESTIONS.items():
    print(f"{label}: {question}")


# %%
def equality_predictions():
    ### BEGIN SOLUTION
    return {"a": True, "b": False, "c": True, "d": False, "e": False}
    ### END SOLUTION


# %%
lab.check("equality_predictions", equality_predictions)

# %% [markdown]
# ## Next
#
# Lab 04 (`04_optimizer_groups.ipynb`) asks which parameters should get weight decay, memory key/values and
# memory tokens included.
