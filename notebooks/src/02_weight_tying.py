# %% [markdown]
# # Lab 02 — Weight tying: how a tie comes apart, under FSDP and through save and load
#
# Meta Lingua had a `weight_tying` option that tied the output projection to the token embedding by assignment,
# `output.weight = tok_embeddings.weight`. A user (Lingua issue #74) saw the training loss fall smoothly while the
# validation loss stayed high, and found the saved model untied. The maintainers' answer (PR #75): the model was
# trained with **FSDP**, FSDP did not account for the tie and silently trained *different* weights for the embedding
# and the output, and the tie only took effect again when the checkpoint was reloaded without FSDP for evaluation.
# Their fix was a `TiedLinear` module that reads the embedding's weight when it runs.
#
# A Chinese article on this fix, [article 003](../xtlab/articles/003_weight_tying.md) (its claims are numbered on
# that page), says that `TiedLinear` keeps the tie through save and load and handles the multi-device case by itself.
# This lab measures those claims and the eight others.
#
# **Objectives.** After this lab you can
# - point at the lines that make a naive tie and a `TiedLinear` tie, and say why only one survives new Parameters;
# - name the three states a pair of weights can be in (tied, half-tied, untied) and detect each by storage;
# - predict which save, load and initialisation paths keep a naive tie, and which break it without an error;
# - run a tied model under real FSDP (`fully_shard`, two CPU processes over gloo) and tell which groupings keep the
#   tie, which raise, and which train two weights in silence; and reproduce the train/validation disagreement of
#   Lingua #74;
# - write `TiedLinear` in full (scale, optional bias, `extra_repr`) so that it survives copies, reloads, `meta`
#   allocation and dtype changes, and load a naive-tied checkpoint without picking one of two tensors in silence.
#
# **Estimated time:** 80 minutes. Run the cells from top to bottom; exercises say **NOT YET** until you write them.

# %%
import copy

import torch

import xtlab
from xtlab.course import ArticleAudit, Claim, verdict_of
from xtlab.labs import weight_tying as lab
from xtlab.model import tie_naively
from xtlab.widgets import predict, predict_verdicts, show_source

xtlab.seed_everything(0)

# %% [markdown]
# ## 1. Two ways to tie, and the mechanism
#
# The naive style assigns one Parameter object to two modules, once, when the model is built:

# %%
show_source(tie_naively, emphasize=["out.weight ="])

# %% [markdown]
# `TiedLinear` owns no weight. It holds the embedding (in a tuple, so that `nn.Module` does not register it a
# second time) and looks its weight up **every time it runs**, so whatever Parameter the embedding holds *now* is
# the one used:

# %%
show_source(xtlab.model.TiedLinear.forward, emphasize=["self.weight", "F.linear"])

# %% [markdown]
# Any path that gives the embedding or the output a *new* Parameter object breaks the first tie without a sound;
# the second has nothing to break.
#
# ### One name per state
#
# For a pair (embedding weight, output weight) this lab uses exactly three names:
#
# - **tied**: one Parameter object, used twice. Gradients from both uses add up in one `.grad`; the optimizer
#   updates it once.
# - **half-tied**: two Parameter objects over the same memory. Values stay equal, but the optimizer sees two
#   Parameters and updates that memory twice per step.
# - **untied**: separate memory. The values may start equal; they drift apart with the first step.
#
# Four styles, as built:

# %%
sizes = {}
for style, label in lab.STYLES.items():
    model = lab.build_model(style)
    sizes[style] = sum(parameter.numel() for parameter in model.parameters())
    print(f"{label:32s} {lab.tie_verdict(model):9s} Parameter objects={len(list(model.parameters()))}  "
          f"elements={sizes[style]}  tie keys={lab.tie_keys(model)}")

# %% [markdown]
# Tying saves one `num_tokens x dim` matrix (compare the element counts). The registered variant is the
# `TiedLinear` the article shows: it registers the embedding as its own submodule, so the state_dict carries the
# weight under two keys.
#
# ## 2. Predict, then check
#
# Two paths before the full table: commit to an answer before running the cell after each question.

# %%
deepcopy_question = predict("copy.deepcopy of a model whose output was assigned the embedding's weight: what do the "
                            "copy's embedding and output hold?",
                            {"one Parameter for both": "tied", "two Parameters over one memory": "half-tied",
                             "two separate memories": "untied"})
deepcopy_question

# %%
original = lab.build_model("naive")
naive_copy = copy.deepcopy(original)
copy_verdict = lab.tie_verdict(naive_copy)
shares_with_original = lab.shares_storage(lab.embedding_weight(naive_copy), lab.embedding_weight(original))
deepcopy_question.reveal(copy_verdict,
                         why=f"the copy's pair is {copy_verdict}: deepcopy keeps a memo of what it has copied, so the "
                             f"one Parameter is copied once and both modules of the copy point at that copy "
                             f"(shares memory with the original: {shares_with_original})")

# %%
load_question = predict("Save the state_dict of a model tied by assignment and load it into a model built WITHOUT "
                        "tying (style 'none'). What do that model's embedding and output hold afterwards?",
                        {"one Parameter for both": "tied", "two Parameters over one memory": "half-tied",
                         "two separate memories": "untied"})
load_question

# %%
untied = lab.build_model("none", seed=1)
untied.load_state_dict(lab.build_model("naive").state_dict())
load_verdict = lab.tie_verdict(untied)
equal_values = torch.equal(lab.embedding_weight(untied), lab.output_weight(untied))
load_question.reveal(load_verdict,
                     why=f"load_state_dict copies values into the Parameters the model already has: equal values "
                         f"({equal_values}), separate memory, so the pair is {load_verdict}; the first step "
                         f"will pull them apart")

# %% [markdown]
# ## 3. Every save, load and initialisation path
#
# Each row runs one path on a fresh tiny model of each style, then inspects the result (`error` means the path
# raised). Every cell of the table is computed now.

# %%
TIED_STYLES = ("naive", "tied_linear", "registered")
paths = {(style, path): lab.run_path(style, path) for path in lab.PATHS for style in TIED_STYLES}
print(f"{'path':44s}" + "".join(f"{lab.STYLES[style][:18]:20s}" for style in TIED_STYLES))
for path, (label, _) in lab.PATHS.items():
    print(f"{label:44s}" + "".join(f"{paths[style, path].verdict:20s}" for style in TIED_STYLES))

# %% [markdown]
# Read the naive column: a plain `torch.save` and `load_state_dict` keep it tied, but `assign=True` leaves it
# half-tied, `to_empty` and `apply` with new Parameters leave it untied, and safetensors refuses to save it; only the
# safetensors row raises. Three rows in detail:

# %%
conflict = paths["naive", "conflicting_keys"].facts
print(f"naive checkpoint holding different values under {conflict['keys']}: "
      f"loaded silently={conflict['loaded_silently']}, the values kept come from {conflict['winner']}")
print("TiedLinear, same test:", paths["tied_linear", "conflicting_keys"].facts)
init = paths["naive", "init_order"].facts
print(f"naive, init every Linear then every Embedding: inits that wrote the tied weight = {init['init_order']}")
print("TiedLinear, same init:", paths["tied_linear", "init_order"].facts["init_order"])
print("safetensors, naive:", paths["naive", "safetensors"].error[:70], "...")
print("safetensors, registered:", paths["registered", "safetensors"].error[:70], "...")

# %% [markdown]
# ### Try it: pick a style and a path
#
# The panel runs the path, shows the verdict, the state_dict keys, `len(list(model.parameters()))` and the storage
# pointers, then trains the result for a few AdamW steps. The left plot is the distance between embedding and
# output weight: it stays at 0 while they are tied and grows once they are untied.

# %%
panel = lab.paths_panel()
panel

# %% [markdown]
# ## 4. Half-tied weights get updated twice
#
# After `load_state_dict(assign=True)` the naive model is half-tied. AdamW keeps a state for each of the two
# Parameters and updates the one memory once per Parameter. The same model and the same batches, tied vs half-tied:

# %%
comparison = lab.compare_half_tied_updates(steps=5, lr=1e-3, weight_decay=0.1)
print(f"update size, half-tied / tied, per step: {[round(float(r), 2) for r in comparison.ratios]}")
print(f"one zero-gradient AdamW step applied weight decay {comparison.decays_tied:.2f} times to the tied weight "
      f"and {comparison.decays_half_tied:.2f} times to the half-tied one")
lab.plot_update_comparison(comparison)

# %% [markdown]
# Move the sliders to change weight decay and the number of steps:

# %%
updates = lab.updates_panel()
updates

# %% [markdown]
# ## 5. FSDP, for real
#
# FSDP2 (`torch.distributed.fsdp.fully_shard`) splits every parameter of a module across the processes (ranks):
# each rank stores a shard. Modules passed to one `fully_shard` call form one *group*: before the group runs, its
# shards are gathered into full weights; after backward, its gradients are reduced and split again. The threads
# around Lingua name two ways ties and FSDP collide: the tied weight must live in **one** group (torchtitan,
# torchtune), and the tie must be in place at the right moment relative to wrapping and allocation (torchtune
# #616). Lingua #84 adds that `TiedLinear` itself does not sit well with FSDP either.
#
# The next cell starts **two real processes**, each building the same tiny model from the same seed, and runs every
# layout below in that one launch. **Backend and device:** the ranks talk over gloo and everything runs on the CPU,
# on every machine: each `fully_shard` gets a CPU device mesh (without one, FSDP2 puts the weights on the machine's
# GPU if it has one), and every model and batch is built on the CPU by name, never on torch's default device.
#
# - naive and `TiedLinear` (xtlab's, and the article's registered one) with the embedding and output in the root's
#   group, and with the embedding (and the output, when it owns a weight) in groups of their own;
# - naive with `fully_shard([token_emb, to_logits])`, the fix FSDP's own error message suggests;
# - models built on the `meta` device and allocated with `to_empty` **before** or **after** `fully_shard`.
#
# For each it reports the Parameter objects behind embedding and output, the elements each rank stores, whether
# the embedding's gradient equals the one a tied model gets without FSDP on the same batches (**grads meet**: the
# output's share arrives), and whether one Parameter with equal values remains after an AdamW step.

# %%
fsdp_question = predict("Naive tie, and the embedding and the output each get their own fully_shard group. "
                        "What does FSDP do?",
                        {"trains them tied": "tied", "trains two weights, silently": "untied",
                         "raises an error": "error"})
fsdp_question

# %%
fsdp = lab.run_fsdp()
print(f"torch {fsdp.torch_version}, backend {fsdp.backend}, device of every rank's shards: {fsdp.device}, "
      f"{fsdp.world_size} processes, every rank finished: {fsdp.ok}")

# %%
fsdp_question.gate(lambda: print("\n".join(lab.scenario_lines(fsdp))), what="the table of FSDP outcomes")

# %%
own_groups = fsdp.scenario("naive, a group each")
fsdp_question.reveal(own_groups.outcome,
                     why=f"in torch {fsdp.torch_version} fully_shard notices the shared Parameter at the first "
                         f"forward: {own_groups.error}")

# %% [markdown]
# The errors in full, as the ranks raised them:

# %%
for row in fsdp.scenarios:
    if row.error:
        print(f"{row.scenario.name}:\n  {row.error}")

# %% [markdown]
# Read the table row by row:
#
# - In one group (the root's, or the one `fully_shard([emb, out])` makes) the naive tie holds: one Parameter, each
#   rank stores half of it, the gradients meet, and the tie holds after a step.
# - In separate groups the installed torch refuses the naive tie with an error that names the fix.
# - `TiedLinear`, xtlab's and the article's alike, works when the embedding is in the same group as the module
#   that calls it, and crashes when the embedding has its own group (next cell): between groups the embedding's
#   weight is a sharded `DTensor` again, and `TiedLinear` reads it as it is. So `TiedLinear` does **not** handle
#   the multi-device case by itself; the grouping does. The audit's row on claim 7 reads the same two rows.
# - A naive model allocated with `to_empty` **before** `fully_shard` is already untied when FSDP sees it (two
#   Parameters). FSDP shards both, raises nothing, and trains two weights. That is the Lingua symptom. Allocated
#   **after** `fully_shard`, the tie holds in this torch.
#
# %%
tied_linear_groupings = {name: fsdp.scenario(name).outcome for name in (
    "TiedLinear, root group", "TiedLinear, embedding in own group", "registered TiedLinear, root group",
    "registered, embedding in own group")}
print(tied_linear_groupings)

# %% [markdown]
# ### The consequence Lingua #74 describes
#
# The same launch trained, for two seeds, a naive model and a `TiedLinear` model allocated the Lingua-symptom
# way (`meta`, `to_empty`, initial values, then `fully_shard`) on the bundled character corpus, each rank on its own
# batches. It measured the validation loss of the sharded model in memory and handed back the full state dict;
# below, that checkpoint is loaded into a freshly built model **without FSDP**, as an evaluation script does.

# %%
for row in fsdp.reloads:
    print(f"{lab.STYLES[row.style]:16s} seed {row.seed}: Parameters while training {row.tie_parameters}, "
          f"train loss {row.first_loss:.2f} -> {row.last_loss:.2f}, checkpoint tensors differ "
          f"{row.checkpoint_differs!s:5s}, val in memory {row.val_in_memory:.3f}, reloaded {row.val_reloaded:.3f} "
          f"({row.verdict_reloaded})")
naive_gaps, tied_gaps = fsdp.reload_gaps("naive"), fsdp.reload_gaps("tied_linear")
print(f"reloaded - in memory, naive: mean {naive_gaps.mean():.3f}, range [{naive_gaps.min():.3f}, "
      f"{naive_gaps.max():.3f}]; TiedLinear: largest |difference| {abs(tied_gaps).max():.3f}")
lab.plot_reload_gap(fsdp)

# %% [markdown]
# The naive model trained as two weights under FSDP: its training loss fell and its in-memory validation loss is
# fine (with a free output matrix it has more weights to fit with). Its checkpoint holds two different tensors.
# The freshly built naive model is tied again, so loading keeps one tensor for both roles, the one stored under
# the last key, and the model that is evaluated is not the model that was trained. `TiedLinear` trained one weight,
# saved one tensor and reloads to the same validation loss.
#
# ## Exercise 1: a grouping that keeps the tie
#
# `fully_shard(module, mesh=mesh)` puts the parameters of `module` that no earlier call took into one group;
# `fully_shard([a, b], mesh=mesh)` makes one group of two modules; the call on the whole model (the root) comes
# last and takes everything left. Here is the grouping the table above calls "a group each", as a function of the
# model and the mesh:

# %%
from torch.distributed.fsdp import fully_shard

show_source(lab.shard_separately, emphasize=["fully_shard(model.token_emb", "fully_shard(model.to_logits"])

# %% [markdown]
# What it does on this lab's two tied models, each on two gloo ranks (the exercise's check runs the same stages:
# shard, forward and backward, every gradient against the tied model's without FSDP, an AdamW step, the saved
# state dict):

# %%
for outcome in lab.grouping_outcomes(lab.shard_separately):
    print(outcome.line())

# %% [markdown]
# Write `shard_tied_model(model, mesh)`: the `fully_shard(..., mesh=mesh)` calls for a tied model built on the
# CPU, whose head `model.to_logits` is either an `nn.Linear` holding the embedding's weight (with or without a
# bias) or a `TiedLinear`. On every rank the embedding and the head must keep one Parameter, both gradients must
# reach it, and the saved state dict must load into a tied model. What the function returns is not used.
#
# Two facts about the model: FSDP gathers a group's weights when one of its modules is **called**, and xtlab's
# `Decoder` calls each block's `norm` and `fn`, never the `Block` itself. The check sends your function's source
# to two real gloo processes (`torch`, `nn`, `dist` and `fully_shard` are defined there) and runs hidden models
# the notebook does not show: other depths and vocabularies, a head with a bias, xtlab's `TiedLinear` with its
# scale. `lab.grouping_outcomes(shard_tied_model)` runs your function on the two models above.


# %%
def shard_tied_model(model, mesh):
    ### BEGIN SOLUTION
    for block in model.attn_layers.layers:
        fully_shard(block.fn, mesh=mesh)  # the Decoder calls block.norm and block.fn, never the Block
    fully_shard([model.token_emb, model.to_logits], mesh=mesh)  # one group for both users of the tied weight
    fully_shard(model, mesh=mesh)  # the root last: it takes every parameter no inner group took
    ### END SOLUTION


# %%
grouping_check = lab.check("shard_tied_model", shard_tied_model)
grouping_check

# %% [markdown]
# A single `fully_shard(model, mesh=mesh)` is a correct answer too (the table's root-group rows): one group for
# everything keeps the tie. Groups per block let each rank gather one block's weights at a time, which is why
# large models use them; the tied weight then needs one group for both of its users.
#
# ## 6. Safe checkpoints
#
# `xtlab.diagnostics.checkpoints` writes safetensors with a tied weight stored once, and refuses a checkpoint whose
# tied keys disagree instead of keeping the last one.

# %%
for style in ("naive", "tied_linear", "registered"):
    trip = lab.safe_round_trip(style)
    print(f"{lab.STYLES[style]:32s} tensors in file {trip.tensors_in_file} (state_dict keys {trip.state_dict_keys}), "
          f"reloaded {trip.verdict}, values restored {trip.values_restored}, "
          f"disagreeing checkpoint refused: {trip.conflicting_refused}")

# %% [markdown]
# ## 7. A real library's choice: x-transformers
#
# x-transformers ties with a plain function that closes over `self`, the model it was built in. Its lines, from the
# installed package:

# %%
lab.xtransformers_tie_source()

# %% [markdown]
# The tied logits are scaled by `tie_embedding_scale`, `dim ** -0.5` unless given (xtlab's `TransformerWrapper`
# passes the same scale to its `TiedLinear`). The head size is not derived from `dim` and `heads`: the installed
# default, read from the package:

# %%
dim = lab.ModelSize().dim
print(f"x-transformers' tie scale at dim {dim}: {lab.xtransformers_default_tie_scale(dim):.4f} "
      f"(dim ** -0.5 = {dim ** -0.5:.4f}); default head size: {lab.xtransformers_default_head_size()}")

# %% [markdown]
# So a tiny model with `dim` 32 would get heads of 64, twice its width; the models below pass
# `attn_dim_head = dim // heads` to both libraries, so they have equal sizes. What do `copy.deepcopy` and
# `torch.save(model)` do with a function that closes over the model? Measured on the installed package, next to
# xtlab's `TiedLinear` (parameter counts printed):

# %%
for library in lab.LIBRARIES:
    result = lab.copy_and_pickle(library)
    print(f"{library}: to_logits is a {result.to_logits_type}, {result.parameters} parameters")
    print(f"  deepcopy's logits change when the ORIGINAL's embedding is edited: {result.copy_follows_original}")
    print(f"  deepcopy's output projection follows its own embedding: {result.copy_follows_itself}")
    error = f" ({result.pickle_error})" if result.pickle_error else ""
    print(f"  torch.save(model) pickles: {result.pickles}{error}")
    print(f"  state_dict round trip gives the same logits: {result.state_dict_round_trip}")

# %% [markdown]
# `copy.deepcopy` copies modules but not functions: the copy's `to_logits` is the *same* function, still reading
# the original model's embedding. A module (`TiedLinear`) is copied with the rest, and pickles.
#
# ## 8. Audit the article
#
# The article's ten claims, numbered as on [its page](../xtlab/articles/003_weight_tying.md). Commit a verdict for
# each before the next cells compute them (the widget, or `audit_question.commit({1: "holds", 2: "unstated", ...})`).
# The rules the verdicts follow are printed with the question.

# %%
audit_question = predict_verdicts("003", list(range(1, 11)))
audit_question

# %% [markdown]
# Two more measurements the audit needs: the article's own `TiedLinear` (its code, as printed) on a module without
# a weight, and the same wrapper used to share a feed-forward projection between two blocks (claims 8 and 9).

# %%
feed_forward = lab.share_feed_forward()
print(f"the article's TiedLinear on nn.ReLU() raises {lab.error_without_weight()}; xtlab's raises "
      f"{lab.xtlab_error_without_weight()}")
print(f"block 1's projection through the wrapper vs block 0's: largest difference {feed_forward.biased_difference:.3f} "
      f"with biases, {feed_forward.unbiased_difference:.3f} without; follows block 0's weight: {feed_forward.follows}; "
      f"keys of the shared weight: {list(feed_forward.weight_keys)}")

# %%
SAVE_LOAD = ("torch_save_load", "conflicting_keys", "assign", "safetensors")
naive_breaks = [path for path in SAVE_LOAD if paths["naive", path].verdict != "tied"]
registered_kept = [path for path in ("torch_save_load", "assign", "meta_to_empty")
                   if paths["registered", path].verdict == "tied"]
naive_fsdp_broken = [row.scenario.name for row in fsdp.scenarios
                     if row.scenario.style == "naive" and row.outcome != "tied"]
root_naive, early_naive = fsdp.scenario("naive, root group"), fsdp.scenario("naive, to_empty then fully_shard")
tied_root = fsdp.scenario("registered TiedLinear, root group")
tied_own = fsdp.scenario("registered, embedding in own group")
naive_rows, tied_rows = fsdp.rows_of("naive"), fsdp.rows_of("tied_linear")
naive_val = sum(row.val_in_memory for row in naive_rows) / len(naive_rows)
tied_val = sum(row.val_in_memory for row in tied_rows) / len(tied_rows)
naive_untied_in_training = all(row.tie_parameters == 2 for row in naive_rows)
audit_question.reveal(ArticleAudit("003", (
    Claim(1, verdict_of(sizes["tied_linear"] < sizes["none"], early_naive.tie_parameters == 2),
          f"section 1: {sizes['none']} elements untied, {sizes['tied_linear']} tied; section 5: a naive tie allocated "
          f"with to_empty before fully_shard stores {early_naive.elements_per_rank[0]} elements of embedding and "
          f"output per rank, the same as untied, against {root_naive.elements_per_rank[0]} when the tie holds",
          condition="the tie is still one Parameter when the model is allocated and sharded (in Lingua's own "
                    "setting, meta -> to_empty -> fully_shard, a naive tie is two weights)"),
    Claim(2, verdict_of(naive_untied_in_training and naive_val > tied_val),
          f"section 5: trained the same steps on the same batches, the naive model FSDP had untied (two weights of the "
          f"same shape: {naive_untied_in_training}) reached a mean validation loss of {naive_val:.3f} in memory, the "
          f"tied TiedLinear model {tied_val:.3f}: the tie saved memory (claim 1), not training steps"),
    Claim(3, verdict_of(bool(naive_breaks), paths["naive", "torch_save_load"].verdict == "tied"),
          f"section 3: plain torch.save -> load keeps it {paths['naive', 'torch_save_load'].verdict}; the paths that "
          f"break it or fail: {naive_breaks} (assign=True -> {paths['naive', 'assign'].verdict}, safetensors -> "
          f"{paths['naive', 'safetensors'].verdict}); disagreeing keys load silently: {conflict['loaded_silently']}",
          condition="the load swaps in new Parameters (assign=True) or the format refuses shared memory "
                    "(safetensors); torch.save and load_state_dict keep it"),
    Claim(4, verdict_of(bool(naive_fsdp_broken)),
          f"section 5, real FSDP on {fsdp.world_size} processes ({fsdp.backend}, {fsdp.device}): "
          f"{naive_fsdp_broken} break it (an error, or two weights in silence); in the root group it is "
          f"{root_naive.outcome}: 'may not work' is what was measured"),
    Claim(5, verdict_of(lab.article_tied_linear_follows()),
          "the article's TiedLinear, as printed, gives exactly x @ embedding.weight.T at build, after an in-place edit "
          "and after the embedding's Parameter is replaced (the replacement itself is Lingua PR #75)"),
    Claim(6, verdict_of(len(registered_kept) == 3, paths["registered", "safetensors"].verdict == "error"),
          f"section 3: tied after {registered_kept}; it registers the embedding, so the weight is stored under two "
          f"keys: safetensors refuses it ({paths['registered', 'safetensors'].verdict}) and a checkpoint can hold "
          f"two different values",
          condition="saved with torch.save or torch.distributed.checkpoint, which accept one memory under two keys"),
    Claim(7, verdict_of(tied_root.outcome == "tied" and tied_own.outcome == "tied"),
          f"section 5: embedding in the root group -> {tied_root.outcome}; embedding in its own FSDP group -> "
          f"{tied_own.outcome} ({(tied_own.error or '')[:60]}...): it works only when the grouping puts the "
          f"embedding with its caller, so not by itself"),
    Claim(8, verdict_of(lab.error_without_weight() == "AttributeError"),
          f"the article's TiedLinear on a module without a weight raises {lab.error_without_weight()} (xtlab's raises "
          f"{lab.xtlab_error_without_weight()}, since it also checks the weight's type)"),
    Claim(9, verdict_of(feed_forward.unbiased_difference == 0 and feed_forward.follows,
                        feed_forward.biased_difference > 0),
          f"sharing block 0's first feed-forward projection with block 1 through the wrapper: identical without "
          f"biases, off by up to {feed_forward.biased_difference:.3f} with them (the wrapper reads .weight only); "
          f"the weight is saved under {len(feed_forward.weight_keys)} keys",
          condition="the shared layers have no bias, or the wrapper also reads the bias"),
    Claim(10, verdict_of(bool(min(naive_gaps) > 0 and max(abs(tied_gaps)) < 1e-6), naive_val <= tied_val),
          f"section 5: reloaded without FSDP, the naive model's validation loss rose by {min(naive_gaps):.3f} to "
          f"{max(naive_gaps):.3f} over {len(naive_gaps)} seeds, TiedLinear's by at most {max(abs(tied_gaps)):.3f}; in "
          f"memory the naive model's mean validation loss was {naive_val:.3f}, TiedLinear's {tied_val:.3f}",
          condition="the model is evaluated after its checkpoint is loaded into a tied model, as Lingua's evaluation "
                    "did; the model FSDP trained untied was not worse in memory"),
)))

# %% [markdown]
# ## Exercise 2: build `TiedLinear`, all of it
#
# Write the class `TiedLinear(embedding, scale=1.0, bias=False)`:
#
# - it **holds the embedding module**, not a copy of its weight and not a second Parameter, in an attribute
#   `nn.Module` does not register (a plain tuple), so the state_dict has one key for the tied weight;
# - it owns no weight; with `bias=True` it owns a bias Parameter of shape `(num_tokens,)` (zeros at first);
# - `forward(x)` maps `(..., dim)` to `(..., num_tokens)`: `scale * (x @ embedding.weight.T)`, plus the bias,
#   with the embedding's weight **as it is when forward runs**;
# - `extra_repr()` says what it is tied to, so `print(model)` shows the tie.
#
# Example: for an `nn.Embedding(24, 16)` and `x` of shape `(2, 5, 16)`, `TiedLinear(emb, scale=0.25)(x)` has shape
# `(2, 5, 24)` and equals `0.25 * x @ emb.weight.T`. The check puts your layer in hidden models (several sizes, with
# and without scale and bias) and also takes them through what broke the naive tie above: a replaced Parameter, a
# strict state_dict round trip, `copy.deepcopy`, `meta` -> `to_empty`, `.to(torch.float64)` and an optimizer step.
# Write `__init__` below the given `super().__init__()`, then `forward` and `extra_repr` as methods of the class.

# %%
import torch.nn.functional as F
from torch import nn


class TiedLinear(nn.Module):
    """The output layer tied to `embedding`: logits = scale * x @ embedding.weight.T (+ bias), read at every call."""

    def __init__(self, embedding: nn.Module, scale: float = 1.0, bias: bool = False):
        super().__init__()
        ### BEGIN SOLUTION
        self.tied = (embedding,)  # a tuple: not registered, so no second state_dict key
        self.scale = scale
        weight = embedding.weight
        self.bias = nn.Parameter(torch.zeros(weight.shape[0], dtype=weight.dtype, device=weight.device)) \
            if bias else None

    def forward(self, x):
        logits = F.linear(x, self.tied[0].weight) * self.scale
        return logits if self.bias is None else logits + self.bias

    def extra_repr(self):
        return f"tied to {self.tied[0]}, scale={self.scale:g}, bias={self.bias is not None}"
        ### END SOLUTION


# %%
lab.check("TiedLinear", TiedLinear)

# %% [markdown]
# The library's version, `xtlab.model.TiedLinear`, keeps the embedding the same way and adds argument checks; it
# has the scale but no bias (neither Lingua's nor x-transformers' tied output has one):

# %%
show_source(xtlab.model.TiedLinear.__init__, emphasize=["self._tied"])

# %% [markdown]
# ## Exercise 3: a tie detector by shared storage
#
# Write `tie_state(a, b)` returning `"tied"`, `"half-tied"` or `"untied"` (section 1). Equal values are not a tie;
# `tensor.untyped_storage().data_ptr()` is the address of a tensor's memory.


# %%
def tie_state(a, b):
    ### BEGIN SOLUTION
    if a is b:
        return "tied"
    same_memory = a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()
    return "half-tied" if same_memory else "untied"
    ### END SOLUTION


# %%
lab.check("tie_state", tie_state)

# %% [markdown]
# ## Exercise 4: load a naive-tied checkpoint into a correctly tied model
#
# Section 5's naive checkpoints hold the tied weight twice, `token_emb.weight` and `to_logits.weight`; a model tied
# with `TiedLinear` has only `token_emb.weight`, so a plain `load_state_dict` refuses the file. Here is one whose
# tie broke before it was saved:

# %%
diverged = lab.naive_checkpoint("diverged pair")
print(f"keys {[key for key in diverged if key in ('token_emb.weight', 'to_logits.weight')]}, equal: "
      f"{torch.equal(diverged['token_emb.weight'], diverged['to_logits.weight'])}")

# %% [markdown]
# Write `load_naive_checkpoint(model, state)`: load `state` into `model` (built with `tie_embedding=True`) keeping
# **one** tensor for the tied weight, and return the key you kept (`"token_emb.weight"` when both are there).
# When both keys are there and their tensors differ, the tie broke before the checkpoint was saved: raise a
# `ValueError` naming both keys, before changing the model, instead of picking one in silence. The output key may
# be missing, and the checkpoint's dtype may differ from the model's (the model keeps its own). Do not change the
# dict you are given. Example: `load_naive_checkpoint(model, lab.naive_checkpoint("equal pair"))` returns
# `"token_emb.weight"`; with `diverged` it raises.


# %%
def load_naive_checkpoint(model, state):
    ### BEGIN SOLUTION
    embedding_key, output_key = "token_emb.weight", "to_logits.weight"
    if embedding_key in state and output_key in state and not torch.equal(state[embedding_key], state[output_key]):
        raise ValueError(f"{embedding_key} and {output_key} differ: the tie broke before this checkpoint was saved")
    kept = embedding_key if embedding_key in state else output_key
    weights = {key: value for key, value in state.items() if key not in (embedding_key, output_key)}
    weights[embedding_key] = state[kept]
    model.load_state_dict(weights)
    return kept
    ### END SOLUTION


# %%
lab.check("load_naive_checkpoint", load_naive_checkpoint)

# %% [markdown]
# ## Next
#
# A tie is a property of objects in memory, not of the values in a checkpoint, and under FSDP also a property of
# how the model is grouped and when it is allocated. Open `03_xl_rotary.ipynb`: XL memories and rotary positions.
