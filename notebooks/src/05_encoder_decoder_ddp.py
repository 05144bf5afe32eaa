# %% [markdown]
# # Lab 05 — Encoder–decoder, the unused encoder `to_logits`, and real DDP
#
# A user trained an encoder–decoder with `DistributedDataParallel` (DDP) and it crashed on the second step with
# *"Expected to have finished reduction in the prior iteration"*. On one GPU the same model trained fine, but it
# also used more memory than it should.
#
# The cause: the encoder still owned a `to_logits` projection (vocabulary logits) that its forward pass never
# used. DDP wants every trainable parameter to take part in every forward pass, unless you pass
# `find_unused_parameters=True`. The fix was to build the encoder without it. In this lab you see the failure with
# real `torch.distributed` processes, and the fix.

# %%
from xtlab.diagnostics import find_unused_parameters
from xtlab.labs import encoder_decoder_ddp as lab
from xtlab.widgets import predict, show_source

# %% [markdown]
# ## 1. The encoder–decoder learns
#
# The task: reverse a row of 6 digits. The encoder reads the row; the decoder writes the answer one digit at a time,
# cross-attending to the encoder's output. A tiny model (width 32, one layer each) trains for a few seconds on CPU.
# We then decode rows it never saw and count the rows it gets exactly right.

# %%
run = lab.train_seq2seq("reverse", steps=80)
print(f"held-out rows exactly right: {run.accuracy_before:.2f} before training, {run.accuracy_after:.2f} after")
print(f"example: {run.example_src} -> {run.example_pred}")
lab.plot_seq2seq_run(run)

# %% [markdown]
# ## 2. Find the parameter that never gets a gradient
#
# Build the same model with `encoder_keeps_logits=True` (the bug) and without it (the fix), run one batch forward
# and backward, and list the trainable parameters whose `.grad` is still `None`. That is what
# `xtlab.diagnostics.find_unused_parameters` does.

# %%
show_source(find_unused_parameters, emphasize=["grad is None"])

# %%
unused_question = predict("With encoder_keeps_logits=True, how many parameters get no gradient?",
                          {"none": "none", "exactly one": "one", "several": "several"})
unused_question

# %%
unused_counts = {}
for keeps in (True, False):
    model = lab.build_seq2seq_model(encoder_keeps_logits=keeps)
    unused = find_unused_parameters(model, lab.seq2seq_loss_fn())
    unused_counts[keeps] = len(unused)
    print(f"encoder_keeps_logits={keeps}: unused {[(p.name, p.shape) for p in unused]}")

# %%
count = unused_counts[True]
unused_question.reveal("none" if count == 0 else "one" if count == 1 else "several",
                       why=f"the finder lists {count} with the bug and {unused_counts[False]} without it")

# %% [markdown]
# The finder names exactly one tensor, the encoder's `to_logits.weight`: a `(vocabulary, width)` matrix.
# How much is that for a real model? The panel builds the model at the size you choose (on PyTorch's `meta`
# device: real modules and shapes, no memory), runs the finder's names against it and adds up their bytes.
# Move the vocabulary and width sliders, and untick the bug.

# %%
panel = lab.waste_panel()
panel

# %%
report = lab.wasted_by_encoder_logits(32000, 512, "float32")
print(f"vocab 32000, width 512: {report.wasted_params:,} unused parameters, "
      f"{report.wasted_bytes / 2**20:.1f} MiB in float32, {report.wasted_fraction:.0%} of the model")

# %% [markdown]
# That share of the model (printed above) does nothing: it is stored, moved to the GPU, saved in every
# checkpoint, and DDP's gradient buckets reserve room for it too.
#
# ## 3. Real DDP: two processes
#
# Now the real thing. `launch_ddp` starts 2 processes through xtlab's DDP runner (gloo on CPU, NCCL when every
# rank has its own GPU). Each rank builds the same model from the same seed, reads its own batches, wraps the model
# in `DistributedDataParallel` and trains a few steps. A rank's exception comes back as text; a rank that hangs is
# stopped after a timeout, so the notebook never hangs and no process is left behind.
#
# Try it with the button: tick or untick the bug, `find_unused_parameters`, or set layer dropout, then press
# **Launch DDP** (a launch takes a few seconds).

# %%
ddp = lab.ddp_panel()
ddp

# %% [markdown]
# The same launches from a cell. Starting the processes costs seconds, so one start runs four
# trainings one after another: the fix, the bug with `find_unused_parameters=True`, the bug, and (section 4) layer
# dropout. A run that fails is recorded and the next one starts afresh. First the bug: we print the first sentence of
# each rank's error (the rest of PyTorch's message is advice) and the parameters DDP says got no gradient:

# %%
fixed_config = lab.DDPTrainConfig("fixed", steps=3, timed_steps=20)
escape_config = lab.DDPTrainConfig("bug + find_unused_parameters", encoder_keeps_logits=True,
                               find_unused_parameters=True, steps=3, timed_steps=20)
bug_config = lab.DDPTrainConfig("bug", encoder_keeps_logits=True, steps=3)
dropout_config = lab.DDPTrainConfig("layer dropout", dec_layer_dropout=0.25, steps=6)
fixed, escape, bug, dropout = lab.launch_ddp_configs((fixed_config, escape_config, bug_config, dropout_config))
print("\n".join(bug.lines()))

# %% [markdown]
# DDP raises this at the start of the second step. In the first backward pass, DDP waited for a gradient of
# `encoder.to_logits.weight` that never came, so the gradient reduction never finished, and the next forward pass
# refuses to start.
#
# Now the fix and the escape hatch. After training, each rank hashes all its parameters; equal hashes mean
# bit-identical weights. As a control, each rank also trains a copy without DDP on its own batches.

# %%
for result in (fixed, escape):
    print("\n".join(result.lines()))

# %% [markdown]
# Both train, and under DDP every rank ends with identical parameters, because DDP averages the gradients
# before each optimizer step; the copies trained without DDP drift apart.
#
# `find_unused_parameters=True` has a price: after every forward pass DDP walks the autograd graph to find the
# parameters it will not see. The median time per step, measured on each rank after the first steps:

# %%
print(f"fixed: {fixed.ms_per_step:.1f} ms per step")
print(f"bug + find_unused_parameters: {escape.ms_per_step:.1f} ms per step")

# %%
# NBVAL_IGNORE_OUTPUT
# A ratio of two timings: it depends on the machine and its load, so nbval does not compare it.
print(f"find_unused_parameters costs {escape.ms_per_step / fixed.ms_per_step:.2f}x the fixed model's step time")

# %% [markdown]
# On a model this small the graph walk is cheap, and the difference may well be lost in timing noise; on a
# large model with a deep graph it is paid on every step. Worse, it hides the real problem: the weights are still there,
# still wasted.
#
# ## 4. The same failure from layer dropout
#
# Lab 01's layer dropout skips whole blocks at random. Under DDP a skipped block is an unused parameter too.
# The third run above used `dec_layer_dropout=0.25` without `find_unused_parameters`:

# %%
print("\n".join(dropout.lines()))

# %% [markdown]
# The parameters DDP names are one decoder block, the one the first step skipped. Here every rank draws the
# same skips (same seed), so every rank fails alike. In a real job the ranks draw different skips: one rank then
# waits forever for a gradient another rank never computes, a hang rather than an error. Layer dropout under DDP
# needs `find_unused_parameters=True`, or skips drawn identically on every rank.
#
# ## Why it matters
#
# * An unused parameter is invisible on one device: the loss goes down and nothing complains.
# * DDP turns it into a crash on step 2 (or a hang), so it is found only on the cluster.
# * `find_unused_parameters=True` makes the crash go away, costs time every step, and keeps the wasted weights.
# * The fix is to not build what forward does not use, and to check with a finder before launching a job.
#
# ## Exercises

# %% [markdown]
# **Exercise 1.** Write your own finder: `unused_parameter_names(model, loss_fn)` runs `loss_fn(model).backward()`
# once and returns the names of the trainable parameters that got no gradient. The checker runs it on a mystery
# model you have not seen (`lab.build_mystery_model()`, if you want to look at it first).


# %%
def unused_parameter_names(model, loss_fn):
    ### BEGIN SOLUTION
    model.zero_grad(set_to_none=True)
    loss_fn(model).backward()
    return [name for name, parameter in model.named_parameters() if parameter.requires_grad and parameter.grad is None]
    ### END SOLUTION


# %%
lab.check("unused_parameter_names", unused_parameter_names)

# %% [markdown]
# **Exercise 2.** Predict, for each model below, whether DDP trains it *without* `find_unused_parameters`
# (True) or fails (False). The checker decides with the finder, over several training-mode passes.

# %%
for name, (description, _) in lab.QUIZ_MODELS.items():
    print(f"{name:14} {description}")


# %%
def ddp_predictions():
    ### BEGIN SOLUTION
    return {
        "fixed": True,
        "bug": False,
        "frozen_bug": True,  # a frozen parameter (requires_grad=False) is not DDP's business
        "tied_decoder": True,  # the tied weight is used, through the embedding and the output
        "layer_dropout": False,
    }
    ### END SOLUTION


# %%
lab.check("ddp_predictions", ddp_predictions)

# %% [markdown]
# ## What x-transformers does
#
# The library you graduate to builds its `XTransformer` encoder with `return_only_embed=True`: no `to_logits` at
# all, so the finder finds nothing.

# %%
from x_transformers import XTransformer as XTransformerLibrary

library_model = XTransformerLibrary(dim=32, enc_num_tokens=11, enc_depth=1, enc_heads=2, enc_max_seq_len=6,
                                    dec_num_tokens=11, dec_depth=1, dec_heads=2, dec_max_seq_len=7)
print(f"x-transformers encoder.to_logits: {library_model.encoder.to_logits}")
print(f"unused: {find_unused_parameters(library_model, lab.seq2seq_loss_fn())}")

# %% [markdown]
# ## Next
#
# This is the last lab. Go back to `00_start_here.ipynb` for the map, or open any lab again and break something
# else.
