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
# A Chinese article on this fix (`shared/articles/003_ead85789676cbeaa.txt`) says that `TiedLinear` keeps the tie
# through save and load and handles the multi-device case by itself. This lab measures both claims.
#
# **Objectives.** After this lab you can
# - point at the lines that make a naive tie and a `TiedLinear` tie, and say why only one survives new Parameters;
# - name the three states a pair of weights can be in (tied, half-tied, untied) and detect each by storage;
# - predict which save, load and initialisation paths keep a naive tie, and which break it without an error;
# - run a tied model under real FSDP (`fully_shard`, two processes) and tell which layouts keep the tie, which
#   raise, and which train two weights in silence; and reproduce the train/validation disagreement of Lingua #74;
# - build `TiedLinear` yourself and repair a save/load function that breaks ties.
#
# **Estimated time:** 50 minutes. Run the cells from top to bottom; exercises say **NOT YET** until you write them.

# %%
import copy

import torch

import xtlab
from xtlab.course import ArticleAudit, Claim, verdict_of
from xtlab.labs import weight_tying as lab
from xtlab.model import tie_naively
from xtlab.widgets import predict, show_source

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
# ## 2. Every save, load and initialisation path
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
# Read the naive column: `assign=True` leaves it half-tied, `to_empty` and `apply` with new Parameters leave it
# untied, and safetensors refuses to save it; only the safetensors row raises. Three rows in detail:

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
# ## 3. Predict, then check
#
# Commit to an answer before running the cell after each question.

# %%
deepcopy_question = predict("After copy.deepcopy of a naive-tied model, what are the copy's embedding and output?",
                            {"tied": "tied", "half-tied": "half-tied", "untied": "untied"})
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
load_question = predict("Save a naive-TIED model's state_dict and load it into an UNTIED model (style 'none'). "
                        "What are the untied model's embedding and output afterwards?",
                        {"tied": "tied", "half-tied": "half-tied", "untied": "untied"})
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
# The next cell starts **two real processes** (gloo on the CPU), each building the same tiny model from the same
# seed, and runs every layout below in that one launch:
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
print(f"torch {fsdp.torch_version}, backend {fsdp.backend}, {fsdp.world_size} processes, every rank finished: "
      f"{fsdp.ok}")
print("\n".join(lab.scenario_lines(fsdp)))

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
#   that calls it, and crashes when the embedding has its own group: between groups the embedding's weight is a
#   sharded `DTensor` again, and `TiedLinear` reads it as it is. So `TiedLinear` does **not** handle the
#   multi-device case by itself; the grouping does.
# - A naive model allocated with `to_empty` **before** `fully_shard` is already untied when FSDP sees it (two
#   Parameters). FSDP shards both, raises nothing, and trains two weights. That is the Lingua symptom. Allocated
#   **after** `fully_shard`, the tie holds in this torch.
#
# ### The consequence Lingua #74 describes
#
# The same launch trained, for three seeds, a naive model and a `TiedLinear` model allocated the Lingua-symptom
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
# x-transformers ties with a plain function, `self.to_logits = lambda t: t @ self.token_emb.emb.weight.t()`, which
# closes over `self`, the model it was built in. What do `copy.deepcopy` and `torch.save(model)` do with that?
# Measured on the installed package, next to xtlab's `TiedLinear` (head size `dim // heads` in x-transformers;
# parameter counts printed):

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
# Each verdict below is computed from the measurements above.

# %%
SAVE_LOAD = ("torch_save_load", "conflicting_keys", "assign", "safetensors")
naive_breaks = [path for path in SAVE_LOAD if paths["naive", path].verdict != "tied"]
registered_kept = [path for path in ("torch_save_load", "assign", "meta_to_empty")
                   if paths["registered", path].verdict == "tied"]
naive_fsdp = [row for row in fsdp.scenarios if row.scenario.style == "naive"]
naive_fsdp_broken = [row.scenario.name for row in naive_fsdp if row.outcome != "tied"]
tied_root, tied_own = fsdp.scenario("registered TiedLinear, root group"), fsdp.scenario(
    "registered, embedding in own group")
root_naive = fsdp.scenario("naive, root group")
naive_rows, tied_rows = fsdp.rows_of("naive"), fsdp.rows_of("tied_linear")
naive_val = sum(row.val_in_memory for row in naive_rows) / len(naive_rows)
tied_val = sum(row.val_in_memory for row in tied_rows) / len(tied_rows)
ArticleAudit("003 (Lingua: the right way to tie weights)", (
    Claim("Assigning the output's weight to the embedding's loses the tie when the model is saved and loaded.",
          verdict_of(bool(naive_breaks), caveat=paths["naive", "torch_save_load"].verdict == "tied"),
          f"section 2: plain torch.save -> load keeps it {paths['naive', 'torch_save_load'].verdict}; the paths that "
          f"break it or fail: {naive_breaks} (assign=True -> {paths['naive', 'assign'].verdict}, safetensors -> "
          f"{paths['naive', 'safetensors'].verdict}); disagreeing keys load silently: {conflict['loaded_silently']}"),
    Claim("With several devices, sharing a weight by assignment may not work.",
          verdict_of(bool(naive_fsdp_broken), caveat=root_naive.outcome == "tied"),
          f"section 5, real FSDP on {fsdp.world_size} processes: {naive_fsdp_broken} break it (an error, or two "
          f"weights in silence); in the root group it is {root_naive.outcome}"),
    Claim("The article's TiedLinear keeps the tie through saving and loading.",
          verdict_of(len(registered_kept) == 3, caveat=paths["registered", "safetensors"].verdict == "error"),
          f"section 2: tied after {registered_kept}; but it stores the weight under two keys, so safetensors "
          f"refuses it and a checkpoint can hold two different values"),
    Claim("TiedLinear handles weight sharing across devices by itself.",
          verdict_of(tied_root.outcome == "tied", caveat=tied_own.outcome != "tied"),
          f"section 5: root group -> {tied_root.outcome}; embedding in its own FSDP group -> {tied_own.outcome} "
          f"({(tied_own.error or '')[:60]}...): it works only when the grouping puts the embedding with its caller"),
    Claim("Tying cuts the parameter count.",
          verdict_of(sizes["tied_linear"] < sizes["none"]),
          f"section 1: {sizes['none']} elements untied, {sizes['tied_linear']} tied; under FSDP each rank stores "
          f"{root_naive.elements_per_rank[0]} elements of the tied weight instead of "
          f"{fsdp.scenario('naive, to_empty then fully_shard').elements_per_rank[0]}"),
    Claim("A wrong tying implementation hurts the trained model.",
          verdict_of(bool(min(naive_gaps) > 0 and max(abs(tied_gaps)) < 1e-6), caveat=naive_val <= tied_val),
          f"section 5: after reloading without FSDP the naive model's validation loss rose by {min(naive_gaps):.3f} "
          f"to {max(naive_gaps):.3f} over {len(naive_gaps)} seeds, TiedLinear's by at most {max(abs(tied_gaps)):.3f}; "
          f"in memory the naive model's mean validation loss was {naive_val:.3f}, TiedLinear's {tied_val:.3f}"),
))

# %% [markdown]
# ## Exercise 1: build `TiedLinear`
#
# `__init__` is written: it keeps the embedding in a tuple, `self.tied`, which `nn.Module` does not register (no
# second state_dict key) and which `copy.deepcopy` copies along with the model. Write `forward(x)`: x has shape
# `(..., dim)`, the result `(..., num_tokens)`, computed with the embedding's weight **as it is when forward
# runs**. The check replaces a model's output with your layer and requires: the right values, gradients that reach
# the embedding, no new state_dict key, and a tie that survives a state_dict round trip,
# `load_state_dict(assign=True)`, `copy.deepcopy` and `meta` -> `to_empty`.

# %%
import torch.nn.functional as F
from torch import nn


class TiedLinear(nn.Module):
    """The output layer tied to `embedding`: logits = x @ embedding.weight.T, the weight read at every call."""

    def __init__(self, embedding: nn.Module):
        super().__init__()
        self.tied = (embedding,)  # a tuple: not registered, so no second state_dict key

    def forward(self, x):
        ### BEGIN SOLUTION
        return F.linear(x, self.tied[0].weight)
        ### END SOLUTION


# %%
lab.check("TiedLinear", TiedLinear)

# %% [markdown]
# ## Exercise 2: a tie detector by shared storage
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
# ## Exercise 3: repair a broken save/load function
#
# This "fast" save and load is broken (marked lines):

# %%
show_source(lab.broken_save_and_load, emphasize=["save_file", "assign=True"])

# %% [markdown]
# What it does to each style, measured:

# %%
import tempfile

for style in lab.REPAIR_STYLES:
    with tempfile.TemporaryDirectory() as folder:
        try:
            build = lambda style=style: lab.build_model(style, seed=1)
            loaded = lab.broken_save_and_load(lab.build_model(style), folder, build)
            print(f"{lab.STYLES[style]:16s} loaded, {lab.tie_verdict(loaded)}")
        except RuntimeError as err:
            print(f"{lab.STYLES[style]:16s} raised RuntimeError: {' '.join(str(err).split())[:60]}...")

# %% [markdown]
# Write `save_and_load(model, folder, build)`: save `model` to a file in `folder`, build a fresh model with
# `build()`, load the file into it and return it. For every style (no tying, naive, `TiedLinear`) the result must
# give the saved model's logits and be exactly as tied as a freshly built model. `xtlab.diagnostics` has
# `save_checkpoint(model, path)` and `load_checkpoint(model, path)` (path ending `.safetensors`); plain
# `torch.save`/`torch.load` works too, if you load without breaking the tie.


# %%
import os

from xtlab.diagnostics import load_checkpoint, save_checkpoint


def save_and_load(model, folder, build):
    ### BEGIN SOLUTION
    path = os.path.join(folder, "model.safetensors")
    save_checkpoint(model, path)
    loaded = build()
    load_checkpoint(loaded, path)
    return loaded
    ### END SOLUTION


# %%
lab.check("save_and_load", save_and_load)

# %% [markdown]
# ## Next
#
# A tie is a property of objects in memory, not of the values in a checkpoint, and under FSDP also a property of
# how the model is grouped and when it is allocated. Open `03_xl_rotary.ipynb`: XL memories and rotary positions.
