"""Build notebooks/02_weight_tying.ipynb (then store its outputs with tools/store_notebook_outputs.py)."""

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

md, code = new_markdown_cell, new_code_cell

cells = [
    md("""# Lab 02 — Weight tying, broken and correct

Meta Lingua first tied its output projection to the token embedding by assignment,
`output.weight = tok_embeddings.weight`. A user saw the training loss fall but the validation loss not,
and the saved model was not tied. The fix was a `TiedLinear` module that reads the embedding's weight
*at call time*.

In this lab you put both styles through every save, load and initialisation path and watch, with live checks,
exactly where the naive one unties — usually without any error."""),
    md("""## Four ways to (not) tie

- `none`: a separate output weight.
- `naive`: `model.to_logits.weight = model.token_emb.weight` (`xtlab.tie_naively`, a teaching exhibit).
- `tied_linear`: xtlab's `TiedLinear`, which holds the embedding in a tuple and reads its weight in `forward`.
- `registered`: Lingua's first `TiedLinear`, which registers the embedding as its own submodule.

A verdict for the pair (embedding weight, output weight) has three values: **tied** (one Parameter object),
**aliased** (two Parameter objects over one memory; xtlab's inspector calls them *half-tied*) and **untied**."""),
    code("""import torch

import xtlab
from xtlab.experiments.weight_tying_models import STYLES, build_model, tie_verdict
from xtlab.experiments.weight_tying_paths import PATHS, run_path

xtlab.seed_everything(0)
for style in STYLES:
    model = build_model(style)
    keys = [key for key in model.state_dict() if key.startswith(("token_emb", "to_logits"))]
    print(f"{style:12s} {tie_verdict(model):7s} parameters={len(list(model.parameters()))}  keys={keys}")"""),
    md("""`TiedLinear` keeps one state_dict key for the tie; the registered variant writes the weight twice.

## Every path, every style

The cell below runs each path from `xtlab.experiments.weight_tying_paths` on a fresh tiny model and prints the
verdict of the result (or the error the path raised)."""),
    code("""shown = ("naive", "tied_linear", "registered")
print(f"{'path':44s}" + "".join(f"{style:14s}" for style in shown))
for path, (label, _) in PATHS.items():
    outcomes = [run_path(style, path) for style in shown]
    print(f"{label:44s}" + "".join(f"{outcome.verdict:14s}" for outcome in outcomes))"""),
    md("""Read the naive column: `assign=True` leaves two Parameters over one memory, `to_empty` and `apply` with new
Parameters leave two independent weights, and safetensors refuses to save it. None of the naive rows that go
wrong raise an error, except safetensors. The details of two rows:"""),
    code("""conflict = run_path("naive", "conflicting_keys").facts
print(f"naive checkpoint with different values under {conflict['keys']}: "
      f"loaded silently={conflict['loaded_silently']}, winner={conflict['winner']}")
print("TiedLinear:", run_path("tied_linear", "conflicting_keys").facts)
init = run_path("naive", "init_order").facts
print(f"naive, init every Linear then every Embedding: inits that wrote the tied weight = {init['init_order']}")
print("TiedLinear, same init:", run_path("tied_linear", "init_order").facts["init_order"])
print("safetensors, naive:", run_path("naive", "safetensors").error[:60], "...")"""),
    md("""## Try it: pick a style and a path

The panel runs the path, shows the inspector's verdict, the state_dict keys, `len(list(model.parameters()))`
and the storage pointers, then trains the result for a few AdamW steps. The left plot is the distance between
embedding and output weight: it stays at 0 while they are tied, and grows once they are not."""),
    code("""from xtlab.viz.weight_tying import paths_panel

panel = paths_panel()
panel"""),
    md("""## Aliased weights get updated twice

After `load_state_dict(assign=True)` the naive model has two Parameters over one memory. AdamW keeps a state for
each and updates that memory once per Parameter. Below, the same model and the same batches, truly tied vs aliased:"""),
    code("""from xtlab.experiments.weight_tying_training import compare_aliased_updates
from xtlab.viz.weight_tying import plot_update_comparison

comparison = compare_aliased_updates(steps=5, lr=1e-3, weight_decay=0.1)
print(f"update size, aliased / tied, per step: {[round(float(r), 2) for r in comparison.ratios]}")
print(f"one zero-gradient AdamW step applied weight decay {comparison.decays_tied:.2f} times to the tied weight "
      f"and {comparison.decays_aliased:.2f} times to the aliased one")
plot_update_comparison(comparison)"""),
    md("""The aliased weight moves further each step than the tied one (the ratio above) and is decayed twice per step.
Move the sliders to change weight decay and the number of steps:"""),
    code("""from xtlab.viz.weight_tying import updates_panel

updates = updates_panel()
updates"""),
    md("""## The symptom the Lingua user saw

Both styles train a tiny character LM on a model built on the `meta` device and allocated with `to_empty`
(as large-model loaders do), save its state_dict, and reload it into a freshly built model of the same style."""),
    code("""from xtlab.experiments.weight_tying_training import validation_symptom
from xtlab.viz.weight_tying import plot_validation_symptom

symptom = validation_symptom()
for style in ("naive", "tied_linear"):
    print(f"{style:12s} tie while training: {symptom.verdict_while_training[style]:7s} "
          f"checkpoint tensors differ: {symptom.checkpoint_keys_differ[style]!s:5s} "
          f"val loss in memory {symptom.val_trained[style]:.3g}, reloaded {symptom.val_reloaded[style]:.3g}, "
          f"changed: {symptom.val_trained[style] != symptom.val_reloaded[style]}")
plot_validation_symptom(symptom)"""),
    md("""Compare each style's two validation losses, in memory and reloaded. The naive model trained untied (with
twice the free weights, which is why it can look better in memory), so its checkpoint holds two different tensors;
the freshly built naive model is tied again, keeps the last key's values for both, and is no longer the model that
was trained. `TiedLinear` saves one tensor and reloads exactly the model it trained.

## Safe checkpoints

`xtlab.diagnostics.checkpoints` writes safetensors with a tied weight stored once, and refuses a checkpoint whose
tied keys disagree instead of keeping the last one."""),
    code("""from xtlab.experiments.weight_tying_checkpoints import safe_round_trip

for style in ("naive", "tied_linear", "registered"):
    trip = safe_round_trip(style)
    print(f"{style:12s} tensors in file {trip.tensors_in_file} (state_dict keys {trip.state_dict_keys}), "
          f"reloaded {trip.verdict}, values restored {trip.values_restored}, "
          f"conflicting checkpoint refused: {trip.conflicting_refused}")"""),
    md("""## A real library's choice: x-transformers

x-transformers ties with a plain function, `self.to_logits = lambda t: t @ self.token_emb.emb.weight.t() * scale`.
The function closes over `self`, the model it was built in. What do `copy.deepcopy` and `torch.save(model)` do
with that? Measured on the installed package, next to xtlab's `TiedLinear`:"""),
    code("""from xtlab.experiments.weight_tying_xtransformers import copy_and_pickle

for library in ("x-transformers", "xtlab"):
    result = copy_and_pickle(library)
    print(f"{library}: to_logits is a {result.to_logits_type}")
    print(f"  deepcopy's logits change when the ORIGINAL's embedding is edited: {result.copy_follows_original}")
    print(f"  deepcopy's output projection follows its own embedding: {result.copy_follows_itself}")
    error = f" ({result.pickle_error})" if result.pickle_error else ""
    print(f"  torch.save(model) pickles: {result.pickles}{error}")
    print(f"  state_dict round trip gives the same logits: {result.state_dict_round_trip}")"""),
    md("""`copy.deepcopy` copies modules but not functions: the copy's `to_logits` is the *same* lambda, still reading
the original model's embedding. A module (`TiedLinear`) is copied with the rest, and pickles.

## Why it matters

A tie is a property of objects in memory, not of the values in a checkpoint. Any path that creates new
Parameters — `to_empty`, an init that assigns new Parameters, `assign=True` — breaks an assignment-made tie
without an error. Reading the embedding's weight at call time (`TiedLinear`) leaves nothing to break, keeps one
state_dict key, and works with safetensors."""),
    md("""## Exercise 1: tell tied from aliased from untied

Write `is_tied(a, b)` returning `"tied"`, `"aliased"` or `"untied"`. Equal values are not a tie.
The cell holds a reference solution; replace it with yours and re-run."""),
    code("""from xtlab.exercises.weight_tying import check_is_tied


def is_tied(a, b):
    if a is b:
        return "tied"
    same_memory = a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()
    return "aliased" if same_memory else "untied"


verdict = check_is_tied(is_tied)"""),
    md("""## Exercise 2: make a naive model survive `to_empty`

`fix(model)` receives a naive-tied model built on the `meta` device; the checker then calls `to_empty` and requires
a tie and a single state_dict key."""),
    code("""from xtlab import TiedLinear
from xtlab.exercises.weight_tying import check_fix_survives_to_empty


def fix(model):
    model.to_logits = TiedLinear(model.token_emb)
    return model


verdict = check_fix_survives_to_empty(fix)"""),
    md("""## Next

Open `03_xl_rotary.ipynb`: XL memories and rotary positions."""),
]

nb = new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                        "language": "python"}})
path = Path(__file__).resolve().parents[2] / "notebooks" / "02_weight_tying.ipynb"
nbformat.write(nb, path)
print(f"wrote {path}")
