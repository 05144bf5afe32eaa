# %% [markdown]
# # Lab 01 — Layer dropout: why did whole blocks lose their gradient?
#
# A user trained an encoder with `layer_dropout=0.1` and logged the gradients of the attention projections
# (`to_q`, `to_k`, `to_v`). At random steps, in random layers, they were simply *missing*, while the loss looked
# perfectly normal. They filed it as a bug.
#
# It is not a bug. In this lab you reproduce the report, measure it, and prove where the missing gradients go.

# %% [markdown]
# ## What layer dropout does
#
# Layer dropout (*stochastic depth*) skips each residual block with probability `p` in every training forward
# pass. A skipped block is the identity: `x + fn(norm(x))` becomes `x`. Its parameters take no part in the forward
# pass, so the backward pass never reaches them and their `.grad` stays `None`.
#
# In xtlab a *block* is one residual branch, named like `attn_layers.layers.3`; a layer of `depth` has two of them
# (attention, then feed-forward). Attention uses one fused `to_qkv` projection where the user's model had
# `to_q`, `to_k`, `to_v`.

# %%
from xtlab.labs import layer_dropout as lab
from xtlab.model import AttentionLayers
from xtlab.widgets import predict, show_source

# %% [markdown]
# ### The mechanism
#
# Two pieces of xtlab's `AttentionLayers` do it. `draw_skips` flips one coin per block, and only in training;
# `forward` then passes the residual stream around every block whose coin said "skip" (the marked lines).

# %%
show_source(AttentionLayers.draw_skips)

# %%
show_source(AttentionLayers.forward, emphasize=["skip"])

# %% [markdown]
# ## 1. Reproduce the report
#
# Train a tiny decoder (depth 4, so 8 blocks) on the bundled corpus for 60 steps with `layer_dropout=0.1`,
# and let the gradient-presence recorder note, after every backward pass, which parameters got a gradient.
# Each row of the heatmap is a module, each column a step; a red cell is a module that got no gradient.

# %%
run = lab.run_layer_dropout(layer_dropout=0.1, depth=4, steps=60, seed=0)
lab.plot_layer_dropout_run(run)

# %% [markdown]
# The red cells fall only on blocks, never on the embeddings, the final norm or the output layer, and the
# loss curve below the heatmap keeps going down. Here is the first step that skipped an attention block, with
# the parameters that had no gradient, just as in the report:

# %%
stats = lab.skip_statistics(run)
attention_blocks = {label for label, kind in zip(run.block_labels, run.block_kinds, strict=True) if kind == "attn"}
first = next(t for t, skipped in enumerate(run.reported_skips) if attention_blocks & set(skipped))
print(f"step {first}: the model skipped {list(run.reported_skips[first])}")
for name in run.presence.without_gradient(first):
    print(f"  no gradient: {name}")
print(f"every loss finite: {stats.losses_finite}; loss at the first step {run.losses[0]:.2f}, "
      f"at the last {run.losses[-1]:.2f}")

# %% [markdown]
# Before reading on: this run has 8 blocks and `p = 0.1`. In what share of its steps did **every** block run?

# %%
share_question = predict("With 8 blocks and p = 0.1, what share of steps ran every block?",
                         {"more than 3 in 4": "high", "between 1 in 4 and 3 in 4": "middle",
                          "fewer than 1 in 4": "low"})
share_question

# %% [markdown]
# ## 2. The numbers behind the heatmap
#
# Every (step, block) cell is an independent coin flip that comes up "skipped" with probability `p`. So the
# share of red block cells should be close to `p`; the 95% Wilson interval says how close is close enough for
# this many cells.
#
# A step runs *every* block only when all `L` blocks survive their flip: probability `(1 - p)^L`. With only a few
# blocks that is likely, with many it is rare, which is why deep models with layer dropout almost never run whole.

# %%
low, high = stats.skip_interval
print(f"skipped block-steps: {stats.skipped_block_steps} of {stats.block_steps} = {stats.skip_fraction:.3f}")
print(f"95% Wilson interval [{low:.3f}, {high:.3f}] contains p = {run.layer_dropout}: {stats.p_in_interval}")
all_low, all_high = stats.all_blocks_interval
print(f"steps that ran all {stats.num_blocks} blocks: {stats.all_blocks_steps} of {stats.steps} "
      f"= {stats.all_blocks_fraction:.3f}, interval [{all_low:.3f}, {all_high:.3f}]")
print(f"(1 - p)^L = {stats.all_blocks_expected:.3f}, inside that interval: "
      f"{all_low <= stats.all_blocks_expected <= all_high}")

# %%
share = stats.all_blocks_fraction
share_question.reveal("high" if share > 0.75 else "middle" if share >= 0.25 else "low",
                      why=f"measured {share:.2f}; (1 - p)^L = 0.9^{stats.num_blocks} = {stats.all_blocks_expected:.2f}")

# %% [markdown]
# Two contrasts. In **eval mode** nothing is skipped, so every block gets its gradient. With ordinary
# **neuron dropout** (and no layer dropout) individual activations are zeroed, but every block still runs, so every
# parameter still gets a gradient at every step.

# %%
eval_run = lab.run_layer_dropout(layer_dropout=0.1, depth=4, steps=30, seed=0, mode="eval")
eval_stats = lab.skip_statistics(eval_run)
print(f"eval mode, p = 0.1: {eval_stats.skipped_block_steps} skipped block-steps, "
      f"{eval_stats.params_without_gradient} parameter-steps without a gradient")
neuron_run = lab.run_layer_dropout(layer_dropout=0.0, depth=4, steps=30, seed=0, neuron_dropout=0.3)
neuron_stats = lab.skip_statistics(neuron_run)
print(f"neuron dropout 0.3, layer dropout 0: {neuron_stats.params_without_gradient} of "
      f"{neuron_stats.param_steps} parameter-steps without a gradient")

# %% [markdown]
# ## 3. The exact link
#
# The model records which blocks it skipped in each forward pass (`model.skipped_blocks`). If layer dropout is
# the whole story, then at every step the set of parameters with no gradient must be *exactly* the set of
# parameters inside those blocks: nothing more, nothing less.

# %%
link = lab.check_skip_gradient_link(run)
print(f"checked {link.steps_checked} steps, {link.steps_with_skips} of them with at least one skipped block")
print(f"no-gradient parameters == parameters of the reported skipped blocks at every step: {link.holds}")

# %% [markdown]
# ## 4. Try it yourself
#
# Move the controls: `layer_dropout` from 0 to 0.9, the depth, the number of steps, the seed, train or eval mode,
# and neuron dropout. The heatmap, the loss and the numbers under the plot are recomputed on every change.
#
# Things to try: push `layer_dropout` to 0.5 and watch the all-blocks steps disappear; switch to eval mode; set
# layer dropout to 0 and raise neuron dropout; change the seed and check how often `p` falls inside the interval.

# %%
panel = lab.layer_dropout_panel()
panel

# %% [markdown]
# ## 5. Why it matters
#
# Layer dropout is a regulariser: each step trains a random shallower network, so the model cannot lean on
# any single block. Below, the same tiny model trains for a few seconds on a small slice of the corpus (small
# enough to memorise), once with `p = 0` and once with `p = 0.3`. Both losses are measured in eval mode.

# %%

comparison = lab.compare_layer_dropout(layer_dropouts=(0.0, 0.3), steps=100, train_tokens=1000)
lab.plot_dropout_comparison(comparison)

# %%
for curve in comparison.curves:
    print(f"p = {curve.layer_dropout}: train {curve.train_losses[-1]:.2f}, validation {curve.val_losses[-1]:.2f}, "
          f"gap {curve.final_gap:.2f}")
no_dropout, with_dropout = comparison.curve(0.0), comparison.curve(0.3)
print(f"smaller train/validation gap with layer dropout: {with_dropout.final_gap < no_dropout.final_gap}")
print(f"lower train loss without layer dropout: {no_dropout.train_losses[-1] < with_dropout.train_losses[-1]}")

# %% [markdown]
# The model without layer dropout fits its training slice faster and opens a wider gap to the validation
# loss; with layer dropout it memorises less. The price is slower fitting, and a model whose blocks get no
# gradient at random steps, which is exactly what the user saw.
#
# Missing gradients are harmless for a single process, but not for distributed training. A skipped block is an
# *unused parameter* for that step, and PyTorch's `DistributedDataParallel` waits for a gradient from every
# parameter unless told otherwise. Lab 05 shows that failure with a real multi-process run.

# %% [markdown]
# ## Exercise (a): which blocks were skipped at step t?
#
# `lab.block_presence_matrix(run)` turns the recorder's result into a plain boolean matrix: `present[t, j]` is
# `True` when block `j` got a gradient at step `t`, and `labels[j]` names the block. Write
# `skipped_blocks_at(present, labels, t)` returning the names of the blocks skipped at step `t`, then run the check.

# %%
present, labels = lab.block_presence_matrix(run)
print(f"present: {present.shape[0]} steps x {present.shape[1]} blocks; labels[0] = {labels[0]!r}")


# %%
def skipped_blocks_at(present, labels, t):
    ### BEGIN SOLUTION
    return [label for label, got_gradient in zip(labels, present[t], strict=True) if not got_gradient]
    ### END SOLUTION


# %%
lab.check("skipped_blocks_at", skipped_blocks_at)

# %% [markdown]
# ## Exercise (b): how many steps run every block?
#
# Write `expected_all_blocks_steps(num_blocks, p, steps)`: the expected number of steps, out of `steps`, in which
# none of `num_blocks` blocks is skipped. Then compare your number with the run above: it measured this many.

# %%
print(f"the run measured {stats.all_blocks_steps} all-blocks steps out of {run.steps} "
      f"({stats.num_blocks} blocks, p = {run.layer_dropout})")


# %%
def expected_all_blocks_steps(num_blocks, p, steps):
    ### BEGIN SOLUTION
    return steps * (1 - p) ** num_blocks
    ### END SOLUTION


# %%
lab.check("expected_all_blocks_steps", expected_all_blocks_steps)

# %% [markdown]
# ## Next
#
# Lab 02 (`02_weight_tying.ipynb`) looks at weight tying and how a naive tie silently comes apart through save and
# load. The unused-parameter story continues in lab 05 (`05_encoder_decoder_ddp.ipynb`).
