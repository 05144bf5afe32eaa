# %% [markdown]
# # Lab 02 — Weight tying, broken and correct
#
# Meta Lingua first tied its output projection to the token embedding by assignment,
# `output.weight = tok_embeddings.weight`. A user saw the training loss fall but the validation loss not,
# and the saved model was not tied. The fix was a `TiedLinear` module that reads the embedding's weight
# *at call time*.
#
# In this lab you put both styles through every save, load and initialisation path and watch, with live checks,
# exactly where the naive one unties — usually without any error.

# %% [markdown]
# ## Four ways to (not) tie
#
# - `none`: a separate output weight.
# - `naive`: `model.to_logits.weight = model.token_emb.weight` (`xtlab.tie_naively`, a teaching exhibit).
# - `tied_linear`: xtlab's `TiedLinear`, which holds the embedding in a tuple and reads its weight in `forward`.
# - `registered`: Lingua's first `TiedLinear`, which registers the embedding as its own submodule.
#
# A verdict for the pair (embedding weight, output weight) has three values: **tied** (one Parameter object),
# **half-tied** (two Parameter objects over one memory) and **untied**.
#
# ### The mechanism
#
# The naive style assigns one Parameter to two modules once; `TiedLinear` never holds a weight of its own and
# reads the embedding's weight each time it runs. Read both:

# %%
import copy

import xtlab
from xtlab.labs import weight_tying as lab
from xtlab.model import TiedLinear, tie_naively
from xtlab.widgets import predict, show_source

show_source(tie_naively, emphasize=["out.weight ="])

# %%
show_source(TiedLinear.forward, emphasize=["F.linear"])

# %%
xtlab.seed_everything(0)
for style in lab.STYLES:
    model = lab.build_model(style)
    keys = [key for key in model.state_dict() if key.startswith(("token_emb", "to_logits"))]
    print(f"{style:12s} {lab.tie_verdict(model):7s} parameters={len(list(model.parameters()))}  keys={keys}")

# %% [markdown]
# `TiedLinear` keeps one state_dict key for the tie; the registered variant writes the weight twice.
#
# ## Every path, every style
#
# The cell below runs each path from `xtlab.labs.weight_tying.paths` on a fresh tiny model and prints the
# verdict of the result (or the error the path raised).

# %%
shown = ("naive", "tied_linear", "registered")
print(f"{'path':44s}" + "".join(f"{style:14s}" for style in shown))
for path, (label, _) in lab.PATHS.items():
    outcomes = [lab.run_path(style, path) for style in shown]
    print(f"{label:44s}" + "".join(f"{outcome.verdict:14s}" for outcome in outcomes))

# %% [markdown]
# Read the naive column: `assign=True` leaves two Parameters over one memory, `to_empty` and `apply` with new
# Parameters leave two independent weights, and safetensors refuses to save it. None of the naive rows that go
# wrong raise an error, except safetensors. The details of two rows:

# %%
conflict = lab.run_path("naive", "conflicting_keys").facts
print(f"naive checkpoint with different values under {conflict['keys']}: "
      f"loaded silently={conflict['loaded_silently']}, winner={conflict['winner']}")
print("TiedLinear:", lab.run_path("tied_linear", "conflicting_keys").facts)
init = lab.run_path("naive", "init_order").facts
print(f"naive, init every Linear then every Embedding: inits that wrote the tied weight = {init['init_order']}")
print("TiedLinear, same init:", lab.run_path("tied_linear", "init_order").facts["init_order"])
print("safetensors, naive:", lab.run_path("naive", "safetensors").error[:60], "...")

# %% [markdown]
# ## Try it: pick a style and a path
#
# The panel runs the path, shows the inspector's verdict, the state_dict keys, `len(list(model.parameters()))`
# and the storage pointers, then trains the result for a few AdamW steps. The left plot is the distance between
# embedding and output weight: it stays at 0 while they are tied, and grows once they are not.

# %%
panel = lab.paths_panel()
panel

# %% [markdown]
# ## Predict: what does `copy.deepcopy` do to a naive tie?
#
# Before running the next cell, commit to an answer.

# %%
deepcopy_question = predict("After copy.deepcopy of a naive-tied model, is the copy's output tied to its embedding?",
                            {"tied": "tied", "half-tied": "half-tied", "untied": "untied"})
deepcopy_question

# %%
naive_copy = copy.deepcopy(lab.build_model("naive"))
deepcopy_question.reveal(lab.tie_verdict(naive_copy),
                         why="deepcopy keeps a memo of the objects it has copied: the one Parameter is copied once "
                             "and both modules of the copy point at that copy")

# %% [markdown]
# ## Half-tied weights get updated twice
#
# After `load_state_dict(assign=True)` the naive model has two Parameters over one memory. AdamW keeps a state for
# each and updates that memory once per Parameter. Below, the same model and the same batches, truly tied vs
# half-tied:

# %%
comparison = lab.compare_half_tied_updates(steps=5, lr=1e-3, weight_decay=0.1)
print(f"update size, half-tied / tied, per step: {[round(float(r), 2) for r in comparison.ratios]}")
print(f"one zero-gradient AdamW step applied weight decay {comparison.decays_tied:.2f} times to the tied weight "
      f"and {comparison.decays_half_tied:.2f} times to the half-tied one")
lab.plot_update_comparison(comparison)

# %% [markdown]
# The half-tied weight moves further each step than the tied one (the ratio above) and is decayed twice per step.
# Move the sliders to change weight decay and the number of steps:

# %%
updates = lab.updates_panel()
updates

# %% [markdown]
# ## The symptom the Lingua user saw
#
# Both styles train a tiny character LM on a model built on the `meta` device and allocated with `to_empty`
# (as large-model loaders do), save its state_dict, and reload it into a freshly built model of the same style.

# %%
symptom = lab.validation_symptom()
for style in ("naive", "tied_linear"):
    print(f"{style:12s} tie while training: {symptom.verdict_while_training[style]:7s} "
          f"checkpoint tensors differ: {symptom.checkpoint_keys_differ[style]!s:5s} "
          f"val loss in memory {symptom.val_trained[style]:.3g}, reloaded {symptom.val_reloaded[style]:.3g}, "
          f"changed: {symptom.val_trained[style] != symptom.val_reloaded[style]}")
lab.plot_validation_symptom(symptom)

# %% [markdown]
# Compare each style's two validation losses, in memory and reloaded. The naive model trained untied (with
# twice the free weights, which is why it can look better in memory), so its checkpoint holds two different tensors;
# the freshly built naive model is tied again, keeps the last key's values for both, and is no longer the model that
# was trained. `TiedLinear` saves one tensor and reloads exactly the model it trained.
#
# ## Safe checkpoints
#
# `xtlab.diagnostics.checkpoints` writes safetensors with a tied weight stored once, and refuses a checkpoint whose
# tied keys disagree instead of keeping the last one.

# %%
for style in ("naive", "tied_linear", "registered"):
    trip = lab.safe_round_trip(style)
    print(f"{style:12s} tensors in file {trip.tensors_in_file} (state_dict keys {trip.state_dict_keys}), "
          f"reloaded {trip.verdict}, values restored {trip.values_restored}, "
          f"conflicting checkpoint refused: {trip.conflicting_refused}")

# %% [markdown]
# ## A real library's choice: x-transformers
#
# x-transformers ties with a plain function, `self.to_logits = lambda t: t @ self.token_emb.emb.weight.t() * scale`.
# The function closes over `self`, the model it was built in. What do `copy.deepcopy` and `torch.save(model)` do
# with that? Measured on the installed package, next to xtlab's `TiedLinear`:

# %%
for library in ("x-transformers", "xtlab"):
    result = lab.copy_and_pickle(library)
    print(f"{library}: to_logits is a {result.to_logits_type}")
    print(f"  deepcopy's logits change when the ORIGINAL's embedding is edited: {result.copy_follows_original}")
    print(f"  deepcopy's output projection follows its own embedding: {result.copy_follows_itself}")
    error = f" ({result.pickle_error})" if result.pickle_error else ""
    print(f"  torch.save(model) pickles: {result.pickles}{error}")
    print(f"  state_dict round trip gives the same logits: {result.state_dict_round_trip}")

# %% [markdown]
# `copy.deepcopy` copies modules but not functions: the copy's `to_logits` is the *same* lambda, still reading
# the original model's embedding. A module (`TiedLinear`) is copied with the rest, and pickles.
#
# ## Why it matters
#
# A tie is a property of objects in memory, not of the values in a checkpoint. Any path that creates new
# Parameters — `to_empty`, an init that assigns new Parameters, `assign=True` — breaks an assignment-made tie
# without an error. Reading the embedding's weight at call time (`TiedLinear`) leaves nothing to break, keeps one
# state_dict key, and works with safetensors.

# %% [markdown]
# ## Exercise 1: tell tied from half-tied from untied
#
# Write `is_tied(a, b)` returning `"tied"`, `"half-tied"` or `"untied"`. Equal values are not a tie.


# %%
def is_tied(a, b):
    ### BEGIN SOLUTION
    if a is b:
        return "tied"
    same_memory = a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()
    return "half-tied" if same_memory else "untied"
    ### END SOLUTION


# %%
lab.check("is_tied", is_tied)

# %% [markdown]
# ## Exercise 2: make a naive model survive `to_empty`
#
# `fix(model)` receives a naive-tied model built on the `meta` device; the checker then calls `to_empty` and requires
# a tie and a single state_dict key. `TiedLinear` is imported above.


# %%
def fix(model):
    ### BEGIN SOLUTION
    model.to_logits = TiedLinear(model.token_emb)
    return model
    ### END SOLUTION


# %%
lab.check("fix", fix)

# %% [markdown]
# ## Next
#
# Open `03_xl_rotary.ipynb`: XL memories and rotary positions.
