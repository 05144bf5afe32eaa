# %% [markdown]
# # Lab 05 — Encoder–decoder, the unused encoder `to_logits`, and real DDP
#
# A Chinese technical article ([article 000](../xtlab/articles/000_encoder_decoder_ddp.md), its claims numbered
# there) reports a bug in x-transformers' encoder–decoder: the encoder kept a `to_logits` projection that its
# forward pass never used. Under `DistributedDataParallel` (DDP) that broke training; on one device it only wasted
# memory. The maintainers removed the weight (version 1.35.2). The installed x-transformers is later than that,
# so this lab rebuilds the old model with xtlab (a teaching switch puts the dead weight back) and measures it.
#
# Every distributed run here is on **real processes** (`torch.distributed`, 2 ranks, gloo on the CPU on every
# machine, the model built on the CPU), each bounded by a timeout, so a hang is an outcome you can read rather
# than a frozen notebook.
#
# **After this lab you will be able to**
# - point at the line that builds the encoder without `to_logits`, and find unused parameters in any model;
# - explain how DDP decides that a parameter's gradient is *ready*, and why one that never is breaks training;
# - tell, for a given model and DDP setting, whether training raises an error, hangs, or trains;
# - say what `find_unused_parameters=True` does to the gradient of a parameter only some ranks used;
# - write the core of DDP's gradient averaging yourself, on two real ranks;
# - fix the model so plain DDP trains it, and load a checkpoint saved before the fix, dropping exactly the dead key;
# - run the same experiments under `torchrun`, the launcher a real (multi-node) job uses;
# - audit the article's claims with measurements.
#
# **Estimated time:** 70 minutes. Run the cells from top to bottom; exercises say **NOT YET** until you write them.

# %%
import torch
from torch.distributed import constants as dist_constants
from torch.nn.parallel import DistributedDataParallel

from xtlab.course import ArticleAudit, Claim, verdict_of
from xtlab.diagnostics import find_unused_parameters
from xtlab.labs import encoder_decoder_ddp as lab
from xtlab.model import XTransformer
from xtlab.widgets import predict, predict_verdicts, show_source

# %% [markdown]
# ## 1. The encoder–decoder learns
#
# The task: reverse a row of digits. The encoder reads the row; the decoder writes the answer one digit at a time,
# cross-attending to the encoder's output. A tiny model (its size is printed below) trains for a moment on the CPU.
# We then decode rows it never saw and count the rows it gets exactly right.

# %%
run = lab.train_seq2seq("reverse", steps=80, device="cpu")
model = lab.build_seq2seq_model()
print(f"width {model.decoder.token_emb.weight.shape[1]}, {len(model.encoder.attn_layers.layers)} encoder blocks, "
      f"{len(model.decoder.attn_layers.layers)} decoder blocks, {sum(p.numel() for p in model.parameters()):,} "
      f"parameters; trained {len(run.losses)} steps")
print(f"held-out rows exactly right: {run.accuracy_before:.2f} before training, {run.accuracy_after:.2f} after")
print(f"example: {run.example_src} -> {run.example_pred}")
lab.plot_seq2seq_run(run)

# %% [markdown]
# ## 2. The mechanism, part 1: an encoder without `to_logits`
#
# The encoder's job is to hand the decoder a sequence of vectors, not vocabulary logits. xtlab's `XTransformer`
# builds it as a `TransformerWrapper(return_only_embed=True)`, which owns no `to_logits`, as x-transformers does
# since the fix. The teaching switch `encoder_keeps_logits=True` adds the old, never-used projection back
# (marked lines):

# %%
show_source(XTransformer.__init__, emphasize=["return_only_embed=True", "encoder_keeps_logits:"])

# %% [markdown]
# Build the model with the switch on, run one batch forward and backward, and list the trainable parameters whose
# `.grad` is still `None`: that is what `xtlab.diagnostics.find_unused_parameters(model, loss_fn, batch)` does, with
# `loss_fn(model, batch)` (the signature of every loss function in xtlab) returning the scalar loss. Here the batch
# is one `(src, tgt)` pair of the reverse task and `lab.seq2seq_loss` returns `model(src, tgt)`. Predict first.

# %%
unused_question = predict("With encoder_keeps_logits=True, how many parameters get no gradient?",
                          {"none": 0, "exactly one": 1, "two or more": 2})
unused_question

# %%
batch = lab.seq2seq_batch()
unused = {keeps: find_unused_parameters(lab.build_seq2seq_model(encoder_keeps_logits=keeps), lab.seq2seq_loss, batch)
          for keeps in (True, False)}


def show_unused():
    for keeps, found in unused.items():
        print(f"encoder_keeps_logits={keeps}: {len(found)} unused: {[(p.name, p.shape) for p in found]}")


unused_question.gate(show_unused, what="the finder's list")

# %%
unused_question.reveal(min(len(unused[True]), 2),
                       why=f"the finder lists {len(unused[True])} with the switch on and {len(unused[False])} "
                           f"without it: {[p.name for p in unused[True]]}")

# %% [markdown]
# One `(vocabulary, width)` matrix. How much is that for a real model? The panel builds the model at the size you
# choose on PyTorch's `meta` device (real modules and shapes, no memory) and adds up the bytes of the parameters
# the finder named. Move the sliders, change the dtype, untick the bug.

# %%
panel = lab.waste_panel()
panel

# %%
waste = lab.wasted_by_encoder_logits(32000, 512, "float32")
fixed_size = lab.wasted_by_encoder_logits(32000, 512, "float32", encoder_keeps_logits=False)
print(f"vocab 32000, width 512: {waste.wasted_params:,} unused parameters, "
      f"{waste.wasted_bytes / 2**20:.1f} MiB in float32, {waste.wasted_fraction:.0%} of the model's "
      f"{waste.total_params:,}")
print(f"the same model without the encoder's to_logits: {fixed_size.total_params:,} parameters, "
      f"{waste.total_params - fixed_size.total_params:,} fewer; unused: {fixed_size.wasted_params}")

# %% [markdown]
# ## 3. The mechanism, part 2: when is a gradient *ready*?
#
# DDP keeps one copy of the model per process (*rank*); each rank runs its own batch, and the gradients are
# averaged across ranks before the optimizer step. DDP does the averaging during the backward pass:
#
# - its constructor builds a *reducer*, which groups the gradients into buckets and registers an autograd hook on
#   every trainable parameter; the hook fires when backward has accumulated that parameter's gradient and marks the
#   parameter **ready** in its bucket;
# - when every parameter of a bucket is ready, the bucket is all-reduced; buckets go in an order fixed when DDP was
#   built, so that every rank joins the same collectives in the same order (every rank must join each one);
# - at the start of the next forward pass, DDP checks that the previous iteration's reduction finished.
#
# A parameter the forward pass never touched never becomes ready. Here is the same kind of hook
# (`register_post_accumulate_grad_hook`) on one process, on the model with the bug:

# %%
readiness = lab.ready_parameters(lab.build_seq2seq_model(encoder_keeps_logits=True), lab.seq2seq_loss, batch)
print(f"{len(readiness.ready)} parameters became ready, first {list(readiness.ready[:2])}")
print(f"never ready: {list(readiness.never_ready)}; frozen (no hook at all): {list(readiness.frozen)}")

# %% [markdown]
# `find_unused_parameters=True` is DDP's way out. After each forward pass DDP hands the outputs to the reducer
# (`prepare_for_backward`), which walks the autograd graph from them and records every parameter it cannot reach;
# when backward's first hook fires, those are marked ready too, so their buckets can be reduced (they join with
# zeros). Without the flag it passes an empty list and assumes every parameter will be used. Marked lines, from the
# installed PyTorch:

# %%
show_source(DistributedDataParallel._post_forward, emphasize=["prepare_for_backward", "find_unused_parameters"])

# %% [markdown]
# ## 4. Real DDP on 2 processes
#
# One launch of 2 processes (xtlab's DDP runner) runs every scenario below, one after another, each in its own
# process group. Where things run is fixed by the lab, not by the machine: gloo on the CPU, the model and batches
# built on the CPU. Building and wrapping the model run under a long timeout; then the ranks meet at a barrier,
# and the training steps run under a short collective timeout (2 seconds here), so a rank that waits in a
# collective its peer never joins raises after it: that, and only that, is a *hang* below. The launch has its own
# timeout, and no process outlives it. Each rank trains the same model (same seed) on its own batches with SGD.

# %%
runs = lab.run_scenarios(lab.notebook_scenarios())
first = runs.reports[0].scenario
print(f"{len(runs)} runs in one launch of 2 processes: {', '.join(runs.names)}")
print(f"each: {first.steps} steps, batch {lab.BATCH_SIZE} per rank, on {lab.DEVICE}, set-up timeout "
      f"{lab.SETUP_TIMEOUT_S:g} s, collective timeout in training {first.collective_timeout_s:g} s")

# %% [markdown]
# ### 4a. The article's failure, and its fix
#
# The encoder keeps its unused `to_logits`; DDP with its defaults. One line per rank: where it raised, after how
# long, and the first sentence of its error; then rank 0's whole message.

# %%
print(runs["encoder_keeps_logits"])
print("\nrank 0's error, in full:\n" + lab.full_message(runs["encoder_keeps_logits"].ranks[0].error))

# %% [markdown]
# Both ranks fail alike, at the forward pass of the step after the first: the first backward never finished its
# reduction, because the reducer was still waiting for `encoder.to_logits.weight`. At the default debug level the
# message gives parameter indices only, and its last line suggests `TORCH_DISTRIBUTED_DEBUG` at `INFO` or `DETAIL`.
# The run `encoder_keeps_logits_info` sets `INFO` in each rank:

# %%
info = runs["encoder_keeps_logits_info"]
print(info)
print("\nrank 0's error, in full:\n" + lab.full_message(info.ranks[0].error))
print(f"\nparameters named at INFO: {list(info.unused)}; named at OFF: {list(runs['encoder_keeps_logits'].unused)}")

# %% [markdown]
# Now the fix (`encoder_fixed`, the encoder without `to_logits`) and the escape hatch
# (`encoder_keeps_logits_find_unused`). After training, each rank hashes all its parameters; equal hashes mean
# bit-identical weights. As a control, each rank of `encoder_fixed` also trains a copy without DDP on its own batches.

# %%
fixed, escape = runs["encoder_fixed"], runs["encoder_keeps_logits_find_unused"]
for report in (fixed, escape):
    print(report)
    print(f"  ranks agree on parameters: {report.ranks_agree}")
print(f"without DDP, the ranks of encoder_fixed agree on parameters: {fixed.local_ranks_agree}")
graph_nodes = lab.autograd_graph_size(lab.seq2seq_loss(lab.build_seq2seq_model(encoder_keeps_logits=True), batch))
print(f"with find_unused_parameters=True, DDP walks the autograd graph after every forward: {graph_nodes} nodes "
      f"for one batch of this model; with False, none")

# %% [markdown]
# Both train and every rank ends with the same weights, because DDP averages the gradients before each step; the
# copies trained without DDP drift apart. The escape hatch keeps the dead weight and pays, at every step, a search
# of the whole autograd graph for parameters it cannot reach (counted above; the durations are the time of all
# steps on each rank, too short here to separate the two runs).
#
# ### 4b. Layer dropout: every rank skips its own blocks
#
# Lab 01's layer dropout skips whole residual blocks at random; a skipped block's parameters get no gradient on
# that rank, at that step. Real layer dropout draws the skips from each rank's own random stream. Here they are
# scripted, so each case shows on every machine: the decoder has depth 2, so blocks 0-2 are layer 0's attention,
# cross-attention and feed-forward, blocks 3-5 layer 1's. The blocks each rank skipped at each step it ran:

# %%
blocks = lab.build_seq2seq_model(depth=lab.LAYER_DROPOUT_DEPTH).decoder.attn_layers.layers
print(f"decoder blocks: {[f'{index} {block.kind}' for index, block in enumerate(blocks)]}")
for name in ("skips_differ", "one_rank_skips_nothing", "same_skips_on_every_rank"):
    print(f"{name}: " + "; ".join(f"rank {rank} skipped {list(steps)}"
                                  for rank, steps in enumerate(runs[name].skipped)))

# %% [markdown]
# In `skips_differ` both ranks skip a block at step 1, but not the same one. In `one_rank_skips_nothing`, rank 0
# runs every block at step 1 and rank 1 skips one. Both with `find_unused_parameters=False`. Predict what happens
# to `one_rank_skips_nothing`.

# %%
hang_question = predict("Rank 0 uses every parameter at step 1, rank 1 skips a block. What happens?",
                        {"both ranks raise the same error": "error",
                         "one rank waits for the other until the timeout": "hang until the timeout",
                         "it trains, silently": "trained on every rank"})
hang_question


# %%
def show_layer_dropout_runs():
    print(runs["skips_differ"])
    print(runs["one_rank_skips_nothing"])


hang_question.gate(show_layer_dropout_runs, what="the two runs' outcomes")

# %%
hang = runs["one_rank_skips_nothing"]
hang_question.reveal(hang.outcome, why=f"rank(s) {hang.ranks_with('hung')} had every gradient ready, started the "
                                       f"all-reduce and waited for a peer that never joined it; rank(s) "
                                       f"{hang.ranks_with('error')} raised at the next forward")

# %% [markdown]
# When every rank leaves some gradient unreduced, no rank starts the last all-reduces and each raises at its next
# forward. When one rank has every gradient ready, it starts an all-reduce its peer never joins, and waits: here
# for the lab's 2 seconds, in a real job for gloo's default process-group timeout:

# %%
print(f"gloo's default process-group timeout: {dist_constants.default_pg_timeout}")

# %% [markdown]
# Whether a job errors or hangs can change from one step to the next with the draws. Drawing the *same* skips on
# every rank does not help either, and neither does declaring the graph static (`static_graph=True` tells DDP that
# the set of used parameters never changes):

# %%
print(runs["same_skips_on_every_rank"])
print(runs["skips_differ_static_graph"])

# %% [markdown]
# Every run of the launch, drawn:

# %%
lab.plot_runs(runs)

# %% [markdown]
# ### 4c. `find_unused_parameters=True`: it trains, and what it does to the gradients
#
# With the flag, `skips_differ_find_unused` trains. After its first backward, every rank kept each parameter's
# DDP gradient, and computed the gradient its own batch gives without DDP. Rank 0 skipped block 2 at step 1 and
# rank 1 skipped block 4, so block 2 was used by rank 1 only and block 4 by rank 0 only. Predict first.

# %%
print(runs["skips_differ_find_unused"])
gradient_question = predict("After averaging, how big is the gradient of a block only rank 1 used, compared with "
                            "rank 1's own gradient for it?",
                            {"the same": 1.0, "half of it": 0.5, "zero": 0.0})
gradient_question

# %%
average = lab.compare_gradient_average(runs["skips_differ_find_unused"])
low, high = average.one_rank_ratio
every_low, every_high = average.every_rank_ratio


def show_gradient_ratios():
    print(f"ranks hold identical DDP gradients: {average.ranks_agree}")
    print(f"{len(average.used_on_one_rank())} parameters used on one rank only: |DDP gradient| / |that rank's "
          f"gradient| from {low:.6f} to {high:.6f}")
    print(f"{len(average.used_on_every_rank())} parameters used on both ranks: |DDP gradient| / |mean of the two| "
          f"from {every_low:.6f} to {every_high:.6f}")
    print(f"largest |DDP gradient - sum of local gradients / 2| over every parameter: {average.max_error:.3g}")


gradient_question.gate(show_gradient_ratios, what="the measured ratios")

# %%
gradient_question.reveal(round(low, 6), why=f"DDP sums every rank's gradient and divides by the world size, 2; the "
                                            f"rank that skipped the block adds zeros, so its ratio is {low:.3f}")

# %% [markdown]
# So `find_unused_parameters=True` does not recover the gradient a skipped block "should" have had: a block used on
# one rank of 2 learns at half the rate of its gradient on that rank, as if its batch were twice as large with
# zeros. That is usually what layer dropout wants (a skip contributes nothing), but it is a silent change of scale.
#
# ## 5. Try it yourself
#
# Choose a model and DDP's settings, then press **Launch DDP**: one run on 2 real processes (a few seconds). The
# picture stored below is the launch's `encoder_keeps_logits` run, made at the panel's first settings. Things to
# try: the bug with `find_unused_parameters`; `INFO`; each layer-dropout model with `static_graph`.

# %%
ddp = lab.ddp_panel(first=runs["encoder_keeps_logits"])
ddp

# %% [markdown]
# ## 6. Audit the article
#
# The installed x-transformers already has the fix, so claims 1 and 6 (what the old release held and what 1.35.2
# removed) are history this lab cannot measure; it audits the others on xtlab's rebuild of the old model. The
# article's remarks on where encoder–decoders are used are not tested. Commit your verdicts first.

# %%
audit_question = predict_verdicts("000", [2, 3, 4, 5, 7, 8, 9, 10, 11])
audit_question

# %% [markdown]
# One more measurement for claim 11: the finder on the layer-dropout decoder, run once in evaluation mode (where no
# block is skipped), and the installed x-transformers next to xtlab's model.

# %%
dropout_model = lab.build_seq2seq_model(depth=lab.LAYER_DROPOUT_DEPTH, dec_layer_dropout=0.3).eval()
dropout_unused = find_unused_parameters(dropout_model, lab.seq2seq_loss, batch)
print(f"layer-dropout model, one check in eval mode: {len(dropout_unused)} unused; under DDP in training: "
      f"{runs['skips_differ'].outcome}")
library = lab.compare_with_library()
print(f"x-transformers {library.version} (the fix: {lab.FIX_VERSION}, included: {library.has_fix}): "
      f"encoder.to_logits is {library.encoder_to_logits}; {library.library_params:,} parameters, "
      f"unused: {list(library.unused)}")
print(f"xtlab's model at the same sizes: {library.xtlab_params:,} parameters")

# %%
encoder_run = runs["encoder_keeps_logits"]
audit_question.reveal(ArticleAudit("000", (
    Claim(2, verdict_of(list(readiness.never_ready) == ["encoder.to_logits.weight"]),
          f"its hook never fires; the finder names {[p.name for p in unused[True]]} (sections 2 and 3)."),
    Claim(3, verdict_of(not escape.ok),
          f"find_unused_parameters=True trains the model with the unused weight ({escape.outcome}, ranks agree: "
          f"{escape.ranks_agree}); what it costs instead: a walk of the whole autograd graph after every forward, "
          f"{graph_nodes} nodes per step for this model, none at False (section 4a)."),
    Claim(4, verdict_of(encoder_run.outcome == "error", needs_unstated_condition=escape.ok),
          f"at DDP's defaults: {encoder_run.outcome} on ranks {encoder_run.ranks_with('error')} in the forward of "
          f"step {encoder_run.ranks[0].step}, not in the synchronisation itself; with find_unused_parameters=True: "
          f"{escape.outcome} (section 4a).",
          condition="DDP runs with find_unused_parameters=False (its default)"),
    Claim(5, verdict_of(waste.wasted_bytes > 0),
          f"{waste.wasted_bytes / 2**20:.1f} MiB in float32 at vocabulary 32000, width 512: "
          f"{waste.wasted_fraction:.0%} of the model (section 2)."),
    Claim(7, verdict_of(not unused[False] and not library.unused),
          f"the finder names {len(unused[False])} unused parameters in xtlab's fixed model and "
          f"{len(library.unused)} in x-transformers {library.version}."),
    Claim(8, verdict_of(fixed.ok and fixed.ranks_agree is True),
          f"encoder_fixed: {fixed.outcome}, ranks agree on parameters: {fixed.ranks_agree} (section 4a)."),
    Claim(9, verdict_of(waste.total_params - fixed_size.total_params == waste.wasted_params),
          f"without the encoder's to_logits the model holds {waste.total_params - fixed_size.total_params:,} "
          f"parameters fewer, exactly the unused ones (section 2)."),
    Claim(10, verdict_of(library.has_fix and not library.unused),
          f"installed {library.version}: its encoder's to_logits is {library.encoder_to_logits} and the finder names "
          f"{len(library.unused)} unused parameters."),
    Claim(11, verdict_of(bool(unused[True]),
                         needs_unstated_condition=not dropout_unused and not runs["skips_differ"].ok),
          f"the check catches the encoder's dead weight (section 2), but one check of the layer-dropout model finds "
          f"{len(dropout_unused)} unused parameters while DDP gives {runs['skips_differ'].outcome} (section 4b).",
          condition="every forward pass uses the same parameters (no layer dropout or other per-step paths), or the "
                    "check runs on training steps with the model's own draws"),
)))

# %% [markdown]
# ## 7. Exercises
#
# **Exercise 1.** Write a finder for any model and batch: `unused_parameter_names(model, batch)` clears every
# `.grad`, runs `model(*batch)`, backpropagates from every tensor the model returns (a tensor, or a tuple, list or
# dict of tensors: add up their sums) and returns the names of the trainable parameters whose `.grad` is still
# `None`. The checker runs it on three models, one of which returns a dict, and on one that already holds the
# gradients of an earlier step.


# %%
def unused_parameter_names(model, batch):
    ### BEGIN SOLUTION
    def total(output):
        if isinstance(output, dict):
            output = list(output.values())
        if isinstance(output, (list, tuple)):
            return sum(total(item) for item in output)
        return output.float().sum()

    model.zero_grad(set_to_none=True)
    total(model(*batch)).backward()
    return [name for name, parameter in model.named_parameters() if parameter.requires_grad and parameter.grad is None]
    ### END SOLUTION


# %%
lab.check("unused_parameter_names", unused_parameter_names)

# %% [markdown]
# **Exercise 2: a reducer, the core of DDP's averaging.** Section 3 showed the hook that says a gradient is ready.
# Now write what DDP does with it, for any model:
#
# `attach_reducer(model, all_reduce_sum, world_size)` is called on every rank before the backward pass. It
# registers a `register_post_accumulate_grad_hook` on every trainable parameter and returns `finish`. Gradients are
# reduced in one fixed order, the same on every rank (say, the trainable parameters from last to first): as soon as
# a parameter and every one before it in that order are ready, the hook calls `all_reduce_sum(parameter.grad)` (it
# sums the tensor over the ranks, in place) and divides it by `world_size`. `finish()`, called after backward,
# reduces the rest in the same order (a parameter that never became ready on this rank joins with zeros: its
# `.grad` becomes zeros first) and returns the names of the trainable parameters that never became ready here.
#
# Example, for a model with parameters `a`, `b`, `c` where forward skips `b`: the order is `c, b, a`; `c`'s hook
# reduces `c`; `a`'s hook finds `b` not ready and waits; `finish()` reduces `b` (zeros) and then `a`, and returns
# `["b"]`. The checker runs your function on 2 real gloo ranks (it sends the source of this one cell: write
# everything inside it; `torch` and `dist` are there) on hidden models, with a 2-second collective timeout.


# %%
def attach_reducer(model, all_reduce_sum, world_size):
    ### BEGIN SOLUTION
    named = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    order = named[::-1]  # fixed before backward, the same on every rank
    ready, reduced = set(), [0]

    def reduce_ready_prefix():
        while reduced[0] < len(order) and order[reduced[0]][0] in ready:
            parameter = order[reduced[0]][1]
            all_reduce_sum(parameter.grad)
            parameter.grad /= world_size
            reduced[0] += 1

    for name, parameter in named:
        def hook(parameter, name=name):
            ready.add(name)
            reduce_ready_prefix()
        parameter.register_post_accumulate_grad_hook(hook)

    def finish():
        for name, parameter in order[reduced[0]:]:
            if name not in ready:
                parameter.grad = torch.zeros_like(parameter)
            all_reduce_sum(parameter.grad)
            parameter.grad /= world_size
        reduced[0] = len(order)
        return [name for name, _ in named if name not in ready]

    return finish
    ### END SOLUTION


# %%
lab.check("attach_reducer", attach_reducer)

# %% [markdown]
# **Exercise 3.** `fix_encoder_decoder(model)` receives a *trained* encoder–decoder that still carries the unused
# encoder `to_logits` (`lab.buggy_trained_model()` builds it, if you want to look). Remove the dead weight without
# touching anything else and return the model. A model that is already fixed (your function's own output, or one
# built without the bug, whose encoder holds `to_logits = None`) must come back unchanged, without an error: a
# loading script may call the fix on every model it meets. The fix is judged by its outcome:
#
# - (a) real DDP on 2 processes with `find_unused_parameters=False` trains the fixed model;
# - (b) the decoder's logits are the unfixed model's, on the batch of section 1's task and on a hidden batch of
#   another shape with a padded source;
# - (c) the fixed model's checkpoint is the pre-fix one less exactly `encoder.to_logits.weight`, so a checkpoint
#   saved before the fix still loads (exercise 4);
# - (d) every other parameter is untouched, and a second fix changes nothing.


# %%
def fix_encoder_decoder(model):
    ### BEGIN SOLUTION
    model.encoder.to_logits = None  # as the encoder is built without the bug: a no-op on a fixed model
    return model
    ### END SOLUTION


# %%
lab.check("fix_encoder_decoder", fix_encoder_decoder)

# %% [markdown]
# **Exercise 4.** Checkpoints saved before the fix hold `encoder.to_logits.weight`; the fixed model has no such
# key, so `load_state_dict` refuses them. `load_before_fix(model, state_dict)` loads one into the fixed model with
# an explicit handling of that key: it drops exactly `encoder.to_logits.weight` when the checkpoint has it, loads
# everything else strictly, and returns the list of the keys it dropped (`[]` for a checkpoint saved after the fix).
# Any other unexpected or missing key means the checkpoint is not this model's: raise a `ValueError` naming it,
# before anything is loaded, so the model is never left half-loaded. Leave the caller's `state_dict` as it was.
# The checker loads four hidden checkpoints: saved before the fix, saved after it, one with a stray key and one
# without a decoder weight. First, what `load_state_dict` itself does with the pre-fix checkpoint, at each `strict`:

# %%
pre_fix = lab.buggy_trained_model().state_dict()
demo = lab.build_seq2seq_model()
try:
    demo.load_state_dict(pre_fix)
except RuntimeError as err:
    print(f"strict=True raised {type(err).__name__}: {err}")
copied = torch.equal(demo.decoder.to_logits.weight, pre_fix["decoder.to_logits.weight"])
print(f"after that error, the decoder's to_logits holds the checkpoint's weight: {copied}")
keys = lab.build_seq2seq_model().load_state_dict(pre_fix, strict=False)
print(f"strict=False raised nothing and returned unexpected {keys.unexpected_keys}, missing {keys.missing_keys}")


# %%
def load_before_fix(model, state_dict):
    ### BEGIN SOLUTION
    state = dict(state_dict)
    dropped = [key for key in ["encoder.to_logits.weight"] if key in state]
    for key in dropped:
        del state[key]
    expected = set(model.state_dict())
    unexpected, missing = sorted(set(state) - expected), sorted(expected - set(state))
    if unexpected or missing:
        raise ValueError(f"checkpoint does not match the model: unexpected keys {unexpected}, missing keys {missing}")
    model.load_state_dict(state)
    return dropped
    ### END SOLUTION


# %%
lab.check("load_before_fix", load_before_fix)

# %% [markdown]
# **Exercise 5.** A decoder with real layer dropout (`p = 0.3`, depth 2) must train under DDP. Choose the settings:
# `find_unused_parameters`, `static_graph`, and `same_skips_on_every_rank` (seed the skip draws alike on every
# rank). The checker trains with your choice for 4 steps on 2 real processes; its verdict is the run that justifies
# (or refutes) it. You can try a choice yourself first, e.g.
# `lab.run_scenarios(lab.settings_scenario({...}, name="try"))["try"]`.


# %%
def ddp_settings_for_layer_dropout():
    ### BEGIN SOLUTION
    return {"find_unused_parameters": True, "static_graph": False, "same_skips_on_every_rank": False}
    ### END SOLUTION


# %%
lab.check("ddp_settings_for_layer_dropout", ddp_settings_for_layer_dropout)

# %% [markdown]
# ## 8. The same runs under the real launcher
#
# The notebook's runner starts its processes itself. A real job is started by `torchrun` (the same program as
# `python -m torch.distributed.run`), which gives each process its rank in the environment. Each DDP experiment of
# this lab also runs that way, through the same per-rank function and the same report: rank 0 prints the lines you
# saw above (only the durations differ). From a shell in the course folder:

# %%
for experiment in ("encoder_keeps_logits", "encoder_fixed", "reducer"):
    print(lab.torchrun_command(experiment))
print(f"every experiment: {', '.join(lab.torchrun_experiments())}")

# %% [markdown]
# `reducer` runs the reference `attach_reducer` on the exercise's hidden cases; add `--answer module:function` to
# run yours from a file. `--standalone` picks a free port on this machine; on several machines, replace it by
# `--nnodes N --rdzv-backend c10d --rdzv-endpoint HOST:PORT` and start the same command on each.
#
# ## Next
#
# Lab 06 (`06_audit.ipynb`) turns this lab's instruments (the finder, the DDP step) and those of the other labs into
# one report card for models you did not write. Go back to `00_start_here.ipynb` for the map.
