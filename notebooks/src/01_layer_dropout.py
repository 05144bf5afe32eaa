# %% [markdown]
# # Lab 01 — Layer dropout: why did whole blocks lose their gradient?
#
# A user trained an x-transformers model with `layer_dropout=0.1` and logged the gradients of the attention
# projections (`to_q`, `to_k`, `to_v`). At random steps, in random layers, they were simply *missing*, while the
# loss looked normal. A Chinese technical article explains it: layer dropout, working as designed, a regulariser that
# helps generalisation. Its claims, numbered, are on [article 001](../xtlab/articles/001_layer_dropout.md); this lab
# checks every one of them.
#
# **After this lab you will be able to**
# - write the layer-dropout stack yourself: a skipped block never called, the residual stream passing it with its
#   gradient, and the library's skips reproduced from a seeded generator;
# - build a recorder that tells a gradient that never arrived from a zero one, and use it to show that the missing
#   gradients are exactly the skipped blocks;
# - tell when a skipped block's weights still move under AdamW (a `None` gradient versus a zero gradient);
# - judge with several seeds, not one, whether layer dropout helps a model, and audit the article's claims;
# - say how x-transformers draws its skips, why `torch.manual_seed` does not reproduce them, and write a skip
#   plan every DDP rank agrees on without communicating.
#
# **Estimated time:** 70 minutes. Run the cells from top to bottom; exercises say **NOT YET** until you write them.

# %%
import numpy as np
import torch

from xtlab.course import ArticleAudit, Claim, verdict_of
from xtlab.labs import layer_dropout as lab
from xtlab.model import AttentionLayers, Block
from xtlab.widgets import predict, predict_verdicts, show_source

# %% [markdown]
# ## 1. The mechanism
#
# Layer dropout (*stochastic depth*) skips each residual block with probability `p` in every training forward
# pass. In xtlab a *block* is one residual branch, `x + fn(norm(x))`, named like `attn_layers.layers.3`; each layer
# of the stack has two of them, attention then feed-forward. A `Block` only holds its `norm` and its `fn`:

# %%
show_source(Block)

# %% [markdown]
# The stack does the rest: `draw_skips` decides, once per training forward pass, which blocks to skip: one coin per
# block, drawn with torch's random number generator, none in eval mode.

# %%
show_source(AttentionLayers.draw_skips)

# %% [markdown]
# ### Exercise 1: the stack
#
# Write the loop the stack runs over its blocks, `layer_dropout_stack(blocks, x, p, training, generator)`:
#
# - `blocks`: a list of `Block`s; a block that runs turns the residual stream `x` into `x + block.fn(block.norm(x))`
#   (`x` is `(batch, n, dim)`);
# - `p`: one skip probability for every block, or a list with one per block;
# - in training (`training=True`) draw one number per block from `generator`, in block order
#   (`torch.rand(len(blocks), generator=generator)`, the numbers `draw_skips` draws from the global generator), and
#   skip block `i` when its number is below its probability; in eval mode every block runs;
# - a skipped block is never called, and the stream passes it by unchanged, gradient included;
# - return `(out, ran)`: the stream after the last block, and `ran[i]`, `True` when block `i` ran.
#
# Example: with `p=[0.0, 1.0]` in training, two blocks give `(x + blocks[0].fn(blocks[0].norm(x)), [True, False])`.
# The check runs hidden cases (1 to 12 blocks, p from 0 to 1, per-block lists, eval mode, float64) and compares
# which blocks ran, how often each `norm` and `fn` was called, the output, and the gradients of `x` and of every
# parameter.

# %%
def layer_dropout_stack(blocks, x, p, training, generator):
    ### BEGIN SOLUTION
    probabilities = [p] * len(blocks) if isinstance(p, (int, float)) else list(p)
    draws = torch.rand(len(blocks), generator=generator) if training else None
    ran = []
    for i, block in enumerate(blocks):
        if training and draws[i] < probabilities[i]:
            ran.append(False)  # skipped: norm and fn never run, so their parameters get no gradient at all
            continue
        x = x + block.fn(block.norm(x))
        ran.append(True)
    return x, ran
    ### END SOLUTION


# %%
stack_verdict = lab.check("layer_dropout_stack", layer_dropout_stack)
stack_verdict

# %% [markdown]
# The library's version is the same loop (marked lines), with memories for lab 03 around it. A skipped block
# takes no part in the forward pass, so the backward pass never reaches its parameters and their `.grad` stays
# `None`.

# %%
show_source(AttentionLayers.forward, emphasize=["skip"])

# %% [markdown]
# Seed your generator as the library seeds torch's global one, and the two skip the same blocks and give the same
# output (the library then applies its final norm). Until your stack passes, the reference runs here.

# %%
against = lab.stack_against_library(layer_dropout_stack if stack_verdict.passed else None)
print(f"{against.whose}: the same skipped blocks as the library in {against.same_skips} of {against.passes} seeded "
      f"passes, outputs apart by at most {against.largest_difference:.1e}")

# %% [markdown]
# ## 2. Reproduce the report
#
# To see which parameters lose their gradient you need an instrument that tells, at every step, whether a gradient
# *arrived*. Reading `.grad` after the step does not tell: `zero_grad(set_to_none=False)` leaves zeros there for a
# parameter nothing reached, and a step without `zero_grad` leaves the last step's.
#
# ### Exercise 2: the recorder
#
# Write `gradient_arrivals(model, run_backward)` for one training step: hook every trainable parameter
# (`parameter.register_hook(fn)` calls `fn(grad)` when its gradient arrives), call `run_backward()` once (it may
# run several backward passes, as gradient accumulation does), remove the hooks, and return
# `{name: state}` with one entry per trainable parameter:
#
# - `"none"` when nothing arrived, `"zero"` when what arrived was all zeros, `"nonzero"` otherwise (within one step
#   a nonzero arrival wins);
# - a parameter shared under two names counted once, under the name `model.named_parameters()` gives it;
#   parameters with `requires_grad=False` left out.
#
# Example: for `nn.Linear(2, 1)` and `run_backward = lambda: (0 * layer(x)).sum().backward()`, the answer is
# `{"weight": "zero", "bias": "zero"}`. The check runs hidden steps (a tied pair, a frozen layer, a parameter used
# twice in one forward, a branch run and discarded, `zero_grad(set_to_none=False)`, stale grads, two backward
# passes in one step) and looks for hooks left behind.

# %%
def gradient_arrivals(model, run_backward):
    ### BEGIN SOLUTION
    arrived, handles = {}, []
    for name, parameter in model.named_parameters():  # a shared parameter is listed once
        if not parameter.requires_grad:
            continue
        arrived[name] = "none"

        def hook(grad, name=name):
            if arrived[name] != "nonzero":
                arrived[name] = "nonzero" if bool(grad.ne(0).any()) else "zero"

        handles.append(parameter.register_hook(hook))
    try:
        run_backward()
    finally:
        for handle in handles:
            handle.remove()
    return arrived
    ### END SOLUTION


# %%
arrivals_verdict = lab.check("gradient_arrivals", gradient_arrivals)
arrivals_verdict

# %% [markdown]
# Now train the lab's tiny decoder on the bundled corpus with the article's `layer_dropout=0.1` and record every
# step with your recorder once it passes (the library's until then). Each row of the heatmap is a module (its name
# read off the model), each column a step; a vermillion (red-orange) cell got no gradient.

# %%
run = lab.run_layer_dropout(layer_dropout=0.1, depth=4, steps=60, seed=0)
stats = lab.skip_statistics(run)
recorded = lab.recorded_run(gradient_arrivals if arrivals_verdict.passed else None, layer_dropout=0.1, depth=4,
                            steps=60, seed=0)
print(f"layer_dropout={run.layer_dropout}, depth={run.depth} ({run.num_blocks} blocks), {run.steps} steps, "
      f"seed {run.seed}; heatmap from {recorded.whose}, the same states as the library's recorder at every step: "
      f"{recorded.same_states_as(run)}")
lab.plot_layer_dropout_run(recorded.run)

# %% [markdown]
# The vermillion cells fall only on blocks, never on the embeddings, the final norm or the output layer. Here is
# the first step that skipped an attention block, with the parameters that had no gradient, and the loss:

# %%
attention_blocks = {label for label, kind in zip(run.block_labels, run.block_kinds, strict=True) if kind == "attn"}
first = next(t for t, skipped in enumerate(run.reported_skips) if attention_blocks & set(skipped))
print(f"step {first}: the model skipped {list(run.reported_skips[first])}")
for name in run.presence.without_gradient(first):
    print(f"  no gradient: {name}")
print(f"every loss finite: {stats.losses_finite}; loss at the first step {run.losses[0]:.2f}, "
      f"at the last {run.losses[-1]:.2f}")

# %% [markdown]
# Before reading on: this run has the number of blocks and the `p` printed above. In what share of its steps did
# **every** block run?

# %%
share_question = predict(f"With {run.num_blocks} blocks and p = {run.layer_dropout}, what share of steps ran every "
                         "block?", {"more than 3 in 4": "high", "between 1 in 4 and 3 in 4": "middle",
                                    "fewer than 1 in 4": "low"})
share_question

# %% [markdown]
# ## 3. The numbers behind the heatmap
#
# Every (step, block) cell is an independent coin flip that comes up "skipped" with probability `p`, so the share
# of vermillion block cells should be close to `p`; the 95% Wilson interval says how close is close enough for this many
# cells. A step runs *every* block only when all `L` blocks survive their flip: probability `(1 - p)^L`.

# %%
low, high = stats.skip_interval
all_low, all_high = stats.all_blocks_interval


def print_skip_counts():
    print(f"skipped block-steps: {stats.skipped_block_steps} of {stats.block_steps} = {stats.skip_fraction:.3f}")
    print(f"95% Wilson interval [{low:.3f}, {high:.3f}] contains p = {run.layer_dropout}: {stats.p_in_interval}")
    print(f"steps that ran all {stats.num_blocks} blocks: {stats.all_blocks_steps} of {stats.steps} "
          f"= {stats.all_blocks_fraction:.3f}, interval [{all_low:.3f}, {all_high:.3f}]")
    print(f"(1 - p)^L = {stats.all_blocks_expected:.3f}, inside that interval: "
          f"{all_low <= stats.all_blocks_expected <= all_high}")


share_question.gate(print_skip_counts, what="the counts of skipped blocks and all-blocks steps")

# %%
share = stats.all_blocks_fraction
share_question.reveal("high" if share > 0.75 else "middle" if share >= 0.25 else "low",
                      why=f"measured {share:.2f}; (1 - p)^L = {1 - run.layer_dropout:g}^{stats.num_blocks} = "
                          f"{stats.all_blocks_expected:.2f}: each block is likely to run, all of them together less so")

# %% [markdown]
# Two contrasts. In **eval mode** nothing is skipped, so every block gets its gradient. With ordinary **neuron
# dropout** (and no layer dropout) single activations are zeroed, but every block still runs, so every parameter
# still gets a gradient at every step.

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
# ### The exact link
#
# The model records which blocks it skipped in each forward pass (`model.skipped_blocks`). If layer dropout is the
# whole story, then at every step the set of parameters with no gradient is *exactly* the set of parameters inside
# those blocks: nothing more, nothing less.

# %%
link = lab.check_skip_gradient_link(run)
print(f"checked {link.steps_checked} steps, {link.steps_with_skips} of them with at least one skipped block")
print(f"no-gradient parameters == parameters of the reported skipped blocks at every step: {link.holds}")

# %% [markdown]
# ## 4. Try it yourself
#
# Move the controls: `layer_dropout`, the depth, the number of steps, the seed, train or eval mode, and neuron
# dropout. The heatmap, the loss and the numbers under the plot are recomputed: each change trains a fresh model,
# except a change of `steps`, since the first steps of a longer run are the shorter run (same batches, same skips):
# the panel keeps a run going and shows its first `steps` steps.
#
# Things to try: push `layer_dropout` up and watch the all-blocks steps disappear; raise the depth at a fixed `p`;
# switch to eval mode; set layer dropout to 0 and raise neuron dropout; change the seed and see how often `p`
# falls inside the interval.

# %%
panel = lab.layer_dropout_panel()
panel

# %% [markdown]
# ## 5. Is a skipped block left alone by the optimizer?
#
# The article says a skipped layer's parameters are not updated at that step. Its gradient is missing, but AdamW
# keeps a running average of past gradients (momentum) and shrinks every weight a little (decoupled weight decay).

# %%
update_question = predict("With AdamW and the default optimizer.zero_grad() before each step, does a skipped "
                          "block's weight change at the step it is skipped?",
                          {"yes: momentum and weight decay still move it": True,
                           "no: it stays exactly the same": False})
update_question

# %% [markdown]
# The cell below trains once per setting: `zero_grad(set_to_none=True)` (PyTorch's default: grads become `None`) or
# `set_to_none=False` (grads become tensors of zeros), with and without weight decay, and measures, for every
# (step, block) that layer dropout skipped, the largest change of any of the block's weights during that step.

# %%
updates = {(to_none, decay): lab.skipped_block_updates(set_to_none=to_none, weight_decay=decay)
           for to_none in (True, False) for decay in (0.01, 0.0)}


def print_updates():
    for (to_none, decay), result in updates.items():
        print(f"zero_grad(set_to_none={to_none}), weight_decay={decay}: {len(result.skipped)} skipped block-steps; "
              f"grad None: {result.count('none')} ({result.moved('none')} moved), grad zeros: "
              f"{result.count('zeros')} ({result.moved('zeros')} moved, up to {result.max_change('zeros'):.2e}); "
              f"running blocks moved up to {result.max_change_running:.2e}")


update_question.gate(print_updates, what="how far the skipped blocks moved")

# %%
by_default = updates[(True, 0.01)]
update_question.reveal(by_default.moved("none") > 0,
                       why=f"with None grads, {by_default.moved('none')} of {by_default.count('none')} skipped "
                           "block-steps changed a weight: PyTorch's optimizers skip a parameter whose .grad is None "
                           "(no moment update, no decay). With zero grads the same skips moved the weights through "
                           "momentum, and through decay when it is on.")

# %% [markdown]
# So the claim holds under PyTorch's default, and fails as soon as grads are zeroed instead of set to `None`
# (`zero_grad(set_to_none=False)`, or code that allocates every `.grad` up front). A zero-gradient step of a skipped
# block moves its weights by about as much as a running block moves: compare the two maxima printed above. The
# first step of a block is special: a block skipped before it ever got a gradient has `.grad is None` even with
# `set_to_none=False`, which is why a few "grad None" skips remain in those runs.

# %% [markdown]
# ## 6. Does layer dropout help here?
#
# The article sells layer dropout as a regulariser that improves generalisation. Measure it: the same tiny model
# trains on a small slice of the corpus (small enough to memorise) with `p = 0` and with the article's `p = 0.1`,
# for several seeds each (model initialisation, batches and skips all change with the seed). Both losses are
# measured in eval mode on fixed batches, every few steps; the settings are printed below.

# %%
seeds = lab.compare_over_seeds(layer_dropouts=(0.0, 0.1), seeds=(0, 1, 2), steps=400, eval_every=50,
                               train_tokens=1000)
short, long = seeds.eval_steps[1], seeds.eval_steps[-1]  # an early and the last measurement
print(f"{len(seeds.seeds)} seeds, {seeds.runs[0].train_tokens} training tokens, depth {seeds.runs[0].depth}, "
      f"losses measured at steps {seeds.eval_steps}")

# %%
help_question = predict(f"After {short} steps, in how many of the {len(seeds.seeds)} seeds does p = 0.1 reach a lower "
                        "validation loss than p = 0?",
                        {"in every seed": "all", "in some seeds": "some", "in none": "none"})
help_question

# %%
helped_short = seeds.seeds_helped(0.1, short)
help_question.reveal("all" if helped_short == len(seeds.seeds) else "some" if helped_short else "none",
                     why=f"at step {short} p = 0.1 gave the lower validation loss in {helped_short} of "
                         f"{len(seeds.seeds)} seeds, and the higher train loss in "
                         f"{seeds.seeds_train_higher(0.1, short)}.")

# %%
print(lab.describe_step(seeds, short, layer_dropout=0.1))

# %% [markdown]
# After this short training, layer dropout does **not** lower the validation loss: the paired differences are not
# all below zero, and their mean is above zero. The mean train/validation gap is smaller with it, but because the
# *train* loss is worse, not because the validation loss is better: a narrower gap alone is not better
# generalisation. One seed could have told either story; the paired differences over several seeds tell this one.
#
# Now the same runs at their last measurement, after the model without layer dropout has had time to memorise its
# slice:

# %%
print(lab.describe_step(seeds, long, layer_dropout=0.1))
print(f"lowest validation loss reached at any measured step (early stopping): "
      f"p = 0: {seeds.best_val_losses(0.0)}; p = 0.1: {seeds.best_val_losses(0.1)}")
lab.plot_seed_comparison(seeds)

# %% [markdown]
# With long training on data it can memorise, the picture turns: the model without layer dropout overfits (its
# train loss falls much faster than its validation loss, so its gap widens), and the model with `p = 0.1` ends with
# the lower validation loss in every seed. Early stopping (keeping each run's lowest measured validation loss)
# shrinks that advantage but does not remove it here. So at this size layer dropout is no free win: it costs
# fitting speed, and pays off only when training runs long enough to overfit.
#
# That is where stochastic depth is reported to help: Huang et al., *Deep Networks with Stochastic Depth*, trained
# very deep residual networks for many epochs, where dropping blocks shortened training and lowered test error
# (they drop deeper blocks more often; x-transformers and xtlab use one `p` for every block by default). Fan et
# al., *Reducing Transformer Depth on Demand with Structured Dropout* (LayerDrop), used it on deep transformers,
# mainly as a regulariser that also lets whole layers be pruned at inference. Neither is a tiny model trained for
# seconds.

# %% [markdown]
# ## 7. The same experiment on x-transformers
#
# The user's model was an x-transformers model, so repeat the report on the real package, at the same size: width,
# depth, heads and head width passed explicitly (x-transformers' default head width, printed below, would make this
# model's attention several times larger). Same data, optimizer, steps and seed.

# %%
sizes = lab.twin_sizes(depth=4)
print(f"parameters at depth {sizes.depth}, head width {sizes.dim_head} (x-transformers' default "
      f"{lab.XT_DEFAULT_DIM_HEAD}): xtlab {sizes.xtlab:,}, x-transformers {sizes.x_transformers:,}")
xt_run = lab.run_xtransformers_layer_dropout(layer_dropout=0.1, depth=4, steps=60, seed=0)
xt_stats = lab.skip_statistics(xt_run)
xt_link = lab.check_skip_gradient_link(xt_run)
for suffix in ("to_q.weight", "to_k.weight", "to_v.weight"):
    print(f"steps at which some {suffix} had no gradient: {lab.steps_without_gradient(xt_run, suffix)} of "
          f"{xt_run.steps}")
print(f"skipped block-steps: {xt_stats.skipped_block_steps} of {xt_stats.block_steps} = {xt_stats.skip_fraction:.3f}"
      f", p inside the 95% interval: {xt_stats.p_in_interval}; every loss finite: {xt_stats.losses_finite}")
lab.plot_layer_dropout_run(xt_run)

# %% [markdown]
# The same picture, with the user's `to_q`, `to_k` and `to_v` among the missing gradients. x-transformers does not
# report which blocks it skipped, but its source says how it decides:

# %%
print(lab.xtransformers_skip_line())
print(f"that random() is Python's random.random: {lab.xtransformers_draws_with_python_random()}")
print(f"blocks without gradient == blocks that replaying Python's random() says were skipped, at every step: "
      f"{xt_link.holds} ({xt_link.steps_checked} steps)")

# %% [markdown]
# That is the difference this experiment shows between the two libraries: xtlab draws its skips with torch's
# generator, x-transformers with Python's `random`. What does that do to a user who seeds torch to reproduce a run?

# %%
seed_question = predict("Call torch.manual_seed(0), run some training-mode forward passes of the x-transformers "
                        "model; call torch.manual_seed(0) again and repeat. Are the same blocks skipped?",
                        {"yes, the same skips": True, "no, different skips": False})
seed_question

# %%
outcomes = lab.seeding_outcomes(layer_dropout=0.3, depth=4, passes=20, seed=0)


def print_outcomes():
    for outcome in outcomes:
        print(f"{outcome.library:>14}, {outcome.seeding} before each run: {outcome.same_passes} of "
              f"{outcome.passes} forward passes skipped the same blocks")


seed_question.gate(print_outcomes, what="the table of reproduced skips")

# %%
xt_torch = next(o for o in outcomes if o.library == "x-transformers" and o.seeding.startswith("torch"))
seed_question.reveal(xt_torch.reproduced,
                     why=f"{xt_torch.same_passes} of {xt_torch.passes} passes matched: torch.manual_seed does not "
                         "touch Python's random, which x-transformers draws from; random.seed does reproduce them.")

# %% [markdown]
# To reproduce x-transformers' skips, seed Python's `random` as well as torch (xtlab's `seed_everything` seeds
# both). And note the mirror image in the table: xtlab's skips do not follow `random.seed`, because they come from
# torch's generator.

# %% [markdown]
# ### Exercise 3: a skip plan every rank agrees on
#
# Under DDP (lab 05) every rank runs the same model on its own batch, then averages every parameter's gradient with
# the other ranks. If rank 0 skips a block that rank 1 runs, the ranks disagree on which gradients exist, and they
# wait on each other. Drawing the skips from a global generator, as both libraries do, keeps the ranks together only
# while every rank's generator is in the same state: a per-rank data seed, or one extra draw on one rank, and they
# part. A plan that needs no communication is a function of the run's seed and the step alone.
#
# Write `skip_plan(seed, step, num_blocks, p)`:
#
# - return a list of `num_blocks` bools, `skip[i]` `True` when block `i` is skipped at this step;
# - `p`: one skip probability for every block, or a list with one per block;
# - each block skipped with its probability, independently of the other blocks, of the other steps and of the
#   other seeds;
# - the same plan in every process: draw from a generator of your own seeded from `seed` and `step`, never from
#   torch's, Python's or NumPy's global one, and keep no state between calls.
#
# Example: `skip_plan(0, 5, 3, [0.0, 1.0, 0.0])` is `[False, True, False]`. The check calls your plan after
# reseeding the global generators, twice with the same arguments, and as another process would (another process
# id, another `RANK`); then over many hidden steps it compares each block's skip frequency, two blocks skipping
# together and two seeds at the same step with independent skips, within a bound it states, and looks for seeds
# and steps that share a plan.

# %%
def skip_plan(seed, step, num_blocks, p):
    ### BEGIN SOLUTION
    probabilities = [p] * num_blocks if isinstance(p, (int, float)) else list(p)
    draws = np.random.default_rng([seed, step]).random(num_blocks)  # a stream of its own for each (seed, step)
    return [bool(u < q) for u, q in zip(draws, probabilities, strict=True)]
    ### END SOLUTION


# %%
plan_verdict = lab.check("skip_plan", skip_plan)
plan_verdict

# %% [markdown]
# Now the plan on two real processes joined by gloo, as DDP joins them (your plan once it passes, the reference
# until then). Each rank computes its plan for a few steps, gathers the other rank's plan and compares. As a
# contrast, each rank also draws the skips from torch's global generator, seeded with its rank, as a per-rank data
# seed would leave it.

# %%
across = lab.plan_across_ranks(skip_plan if plan_verdict.passed else None, seed=0, steps=8, num_blocks=8, p=0.3)
for step in range(3):
    print(f"step {step}: rank 0 skips blocks {across.skipped(0, step)}, rank 1 skips blocks {across.skipped(1, step)}")
print(f"{across.whose}: the two ranks' plans were the same at {across.agreed_steps} of {across.steps} steps; "
      f"torch.rand after torch.manual_seed(rank): the same at {across.global_agreed_steps} of {across.steps}")

# %% [markdown]
# The plan agrees at every step without a single message between the ranks, while the global-generator skips part
# as soon as the ranks' generators do. The library's own skips stay together under DDP only while every rank seeds
# torch alike and draws the same numbers in the same order.

# %% [markdown]
# ## 8. Audit the article
#
# Three measurements the audit still needs: does a skipped block's code run at all in the forward pass (its norm
# and branch counted on every training pass of the library's stack); how often a whole layer, attention *and*
# feed-forward, is skipped in the run of section 2; and whether layer dropout and ordinary dropout run together.

# %%
calls = lab.skipped_block_calls(layer_dropout=0.1, depth=4, passes=50, seed=0)
print(f"{calls.passes} training passes: {calls.skipped_blocks} skipped (pass, block) cells, of which "
      f"{calls.skipped_but_called} called their norm or branch; blocks that ran without calling their branch: "
      f"{calls.run_but_not_called}")
layers = lab.whole_layer_skips(run)
layer_low, layer_high = layers.interval
print(f"whole layers skipped (attention and feed-forward at the same step): {layers.skipped} of {layers.layer_steps} "
      f"= {layers.fraction:.3f}, 95% interval [{layer_low:.3f}, {layer_high:.3f}]; p^2 = {layers.expected:.3f}")
both_run = lab.run_layer_dropout(layer_dropout=0.1, depth=4, steps=30, seed=0, neuron_dropout=0.3)
both_stats, both_link = lab.skip_statistics(both_run), lab.check_skip_gradient_link(both_run)
print(f"layer dropout 0.1 with neuron dropout 0.3: {both_stats.skipped_block_steps} skipped block-steps in "
      f"{both_run.steps} steps, every loss finite: {both_stats.losses_finite}, no-gradient parameters == skipped "
      f"blocks' parameters at every step: {both_link.holds}")

# %% [markdown]
# Your turn first: give each claim of the article's page a verdict under the rules printed below (`holds`,
# `unstated` or `fails`), with the dropdowns or in code, before the next cell computes them.

# %%
audit_question = predict_verdicts("001", list(range(1, 13)))
audit_question

# %%
none_default, zeros_default = updates[(True, 0.01)], updates[(False, 0.01)]
n = len(seeds.seeds)
qkv_steps = [lab.steps_without_gradient(xt_run, s) for s in ("to_q.weight", "to_k.weight", "to_v.weight")]
lower_val_without = n - seeds.seeds_helped(0.1, short)
audit_question.reveal(ArticleAudit("001", (
    Claim(1, verdict_of(all(0 < steps < xt_run.steps for steps in qkv_steps)),
          f"x-transformers run (section 7): to_q/to_k/to_v without gradient at {qkv_steps} of {xt_run.steps} steps."),
    Claim(2, verdict_of(stats.losses_finite and xt_stats.losses_finite),
          f"every loss finite in both runs (sections 2 and 7); xtlab loss {run.losses[0]:.2f} at the first step, "
          f"{run.losses[-1]:.2f} at the last."),
    Claim(3, verdict_of(link.holds and xt_link.holds and eval_stats.params_without_gradient == 0),
          f"no-gradient parameters are exactly those of the skipped blocks at all {link.steps_checked} steps (xtlab) "
          f"and {xt_link.steps_checked} steps (x-transformers); in eval mode {eval_stats.params_without_gradient} "
          "are missing (section 3)."),
    Claim(4, verdict_of(calls.bypassed),
          f"{calls.skipped_but_called} of {calls.skipped_blocks} skipped blocks called their norm or branch over "
          f"{calls.passes} passes; the residual stream went around them (this section)."),
    Claim(5, verdict_of(link.holds and xt_link.holds),
          f"every skipped block's parameters had .grad None at its step, in all {link.steps_checked} + "
          f"{xt_link.steps_checked} steps, and no other parameter did (sections 3 and 7)."),
    Claim(6, verdict_of(stats.p_in_interval and xt_stats.p_in_interval,
                        needs_unstated_condition=not layer_low <= run.layer_dropout <= layer_high),
          f"blocks skipped {stats.skip_fraction:.3f} (xtlab) and {xt_stats.skip_fraction:.3f} (x-transformers), "
          f"p inside both 95% intervals; whole layers {layers.fraction:.3f}, interval [{layer_low:.3f}, "
          f"{layer_high:.3f}] (this section).",
          condition="a 'layer' is one residual block: attention and feed-forward are skipped independently, "
                    "so a whole transformer layer is skipped with p^2"),
    Claim(7, verdict_of(none_default.moved("none") == 0, needs_unstated_condition=zeros_default.moved("zeros") > 0),
          f"None grads: {none_default.moved('none')} of {none_default.count('none')} skipped block-steps moved; zero "
          f"grads (set_to_none=False): {zeros_default.moved('zeros')} of {zeros_default.count('zeros')} moved "
          "(section 5).",
          condition="gradients are reset to None between steps (zero_grad's default set_to_none=True)"),
    Claim(8, verdict_of(seeds.seeds_helped(0.1, long) == n,
                        needs_unstated_condition=seeds.seeds_helped(0.1, short) < n),
          f"lower validation loss with p = 0.1 in {seeds.seeds_helped(0.1, short)} of {n} seeds at step {short}, "
          f"{seeds.seeds_helped(0.1, long)} of {n} at step {long} (section 6).",
          condition="training runs long enough for the model without it to overfit"),
    Claim(9, verdict_of(link.holds, needs_unstated_condition=stats.params_without_gradient > 0),
          f"fully explained by the skips (section 3), but {stats.params_without_gradient} parameter-steps had no "
          "gradient: under DDP those are unused parameters (lab 05).",
          condition="one process, or DDP told to expect unused parameters (find_unused_parameters=True)"),
    Claim(10, verdict_of(seeds.seeds_train_higher(0.1, short) == n),
          f"at step {short}, where p = 0.1 is behind in fitting, p = 0 reached the lower train loss in "
          f"{seeds.seeds_train_higher(0.1, short)} of {n} seeds (and the lower validation loss in {lower_val_without}) "
          "(section 6)."),
    Claim(11, verdict_of(seeds.seeds_helped(0.1, long) == n
                         and seeds.gaps(0.0, long).mean > seeds.gaps(0.0, short).mean),
          f"at step {long} the model without it has overfitted (gap {seeds.gaps(0.0, short).mean:.2f} at step "
          f"{short}, {seeds.gaps(0.0, long).mean:.2f} at step {long}); p = 0.1 gives the lower validation loss in "
          f"{seeds.seeds_helped(0.1, long)} of {n} seeds (section 6)."),
    Claim(12, verdict_of(both_stats.losses_finite and both_link.holds and both_stats.skipped_block_steps > 0),
          f"p = 0.1 with neuron dropout 0.3: {both_stats.skipped_block_steps} skipped block-steps, finite losses, "
          "skips and missing gradients still match (this section)."),
)))

# %% [markdown]
# ## Next
#
# Lab 02 (`02_weight_tying.ipynb`) looks at weight tying and how a naive tie silently comes apart through save and
# load. The unused-parameter story continues in lab 05 (`05_encoder_decoder_ddp.ipynb`).
