# %% [markdown]
# # Lab 06 — Capstone: audit transformers you did not write
#
# Labs 01–05 each broke one thing in xtlab's own model: layer dropout and gradients, weight tying, XL memories,
# optimizer groups, DDP. The skill you need next is to find those failures in *someone else's* model, on the
# versions you have installed. This lab turns every instrument and invariant of the course into one **report
# card**, a library function (`xtlab.audit(model)`, or `python -m xtlab.audit module:factory` from a shell) that works
# on any `nn.Module` through a small hook, the `ModelAdapter`.
#
# **After this lab you will be able to**
# - audit a model you did not write and read its report card: what was checked, whether the model holds, fails, or
#   the check could not run, and the evidence;
# - tell which behaviours belong to the library (x-transformers) and which to the architecture, by auditing a twin
#   with the same weights;
# - write an adapter that lets the audit drive a new architecture;
# - write an invariant of your own and prove it catches a planted bug and passes the fixed twin;
# - audit a model you have never seen with the course's instruments (ties, unused parameters, weight decay) and
#   leave it exactly as you found it.
#
# **Estimated time:** 55 minutes. Run the cells from top to bottom; exercises say **NOT YET** until you write them.

# %%
import copy

import torch

import xtlab
from xtlab.diagnostics.model_audit import (
    ModelAdapter,
    Subject,
    audit_models,
    installed_versions,
    x_transformers_adapter,
)
from xtlab.diagnostics.ties import embedding_output_tie
from xtlab.interop import twin_of
from xtlab.labs import audit as lab
from xtlab.widgets import predict, show_source

device = xtlab.default_device()
print(f"device: {xtlab.describe_device(device)}")
print("installed:", ", ".join(f"{package} {version}" for package, version in installed_versions().items()))

# %% [markdown]
# ## 1. Four models you did not write
#
# - **x-transformers**: a `TransformerWrapper` decoder with every feature the course studied: layer dropout,
#   XL memories (`max_mem_len`), a tied embedding, memory tokens, attention memory key/values and rotary positions.
# - **xtlab twin**: the same model rebuilt by `xtlab.interop.twin_of`, with the same weights. What differs between
#   the two report cards comes from the library, not from the architecture.
# - **torch.nn.Transformer**: PyTorch's encoder–decoder.
# - **TinyLM**: a small GPT written in another style (its own names, a tie by assignment, block dropout called
#   `block_drop`, and a leftover `value_head`). It has no ready adapter: you will write one.

# %%
x_model, x_recipe = lab.build_x_transformers(seed=0)
x_model = x_model.to(device)
twin = twin_of(x_model)
torch_model = lab.build_torch_transformer(seed=0).to(device)
tiny = lab.build_tiny_lm(seed=0, value_head=True).to(device)
for name, model in (("x-transformers", x_model), ("xtlab twin", twin), ("torch.nn.Transformer", torch_model),
                    ("TinyLM", tiny)):
    print(f"{name:>22}: {type(model).__module__}.{type(model).__name__}, "
          f"{lab.parameter_count(model):,} parameters")

# %% [markdown]
# ## 2. The hook: one adapter per kind of model
#
# The audit never guesses how to use a model. A `ModelAdapter` tells it how to make a batch (from a seeded
# generator), compute a loss, where the embedding/output pair is, how to read and set layer dropout, and how to
# run one XL segment. Its interface (`from xtlab.diagnostics.model_audit import ModelAdapter`):

# %%
show_source(ModelAdapter, emphasize=["make_batch:", "loss:", "embedding:", "set_layer_dropout:", "xl_step:"])

# %% [markdown]
# Every row of a card has one of three outcomes: the model **holds** the invariant, the model **fails** it, or the
# check **could not run**: a hook is missing (no memories, no tie), or the adapter itself raised. Then the row says
# where in the adapter, so a bug in your loss function is never reported as the model's. Here is the ready adapter
# for x-transformers (marked: the hooks that differ from xtlab's):

# %%
show_source(x_transformers_adapter, emphasize=["x_transformers_get_layer_dropout", "xl_step=", "embedding="])

# %% [markdown]
# ## 3. Predict, then audit
#
# x-transformers ties its output to the embedding with a function (`t @ token_emb.emb.weight.t()`), not with a
# shared Parameter. Predict what `copy.deepcopy` does to that tie.

# %%
deepcopy_question = predict("Is the deep copy of the x-transformers model still tied to its own embedding?",
                            {"yes, tied": "tied", "no, untied": "untied"})
deepcopy_question

# %% [markdown]
# Now the report cards. One call audits all four models; their DDP steps share a single launch of 2 processes
# (gloo on the CPU). The x-transformers model does not pickle (its tie is a lambda), so the DDP step rebuilds it
# from its recipe and loads its weights.

# %%
cards = audit_models({"x-transformers": Subject(x_model, build=x_recipe), "xtlab twin": twin,
                      "torch.nn.Transformer": torch_model,
                      "TinyLM": Subject(tiny, lab.tiny_lm_adapter(tiny))}, seed=0, steps=8)
deepcopy_question.gate(lambda: print(cards["x-transformers"]), what="the x-transformers report card")

# %%
copied = copy.deepcopy(x_model)
deepcopy_tie = embedding_output_tie(copied, "token_emb", "to_logits").value
deepcopy_question.reveal(deepcopy_tie, why=f"the copy's function still reads the original model's embedding: its "
                                           f"tie is {deepcopy_tie}; the card's tying row "
                                           f"{cards['x-transformers'].status('tying_paths')}")

# %% [markdown]
# The xtlab twin has the same weights and sizes. Its card:

# %%
print(cards["xtlab twin"])

# %% [markdown]
# And the two others. `torch.nn.Transformer` has no embedding, no layer dropout and no memories, so those rows do
# not apply; TinyLM's leftover `value_head` shows twice: as an unused parameter and in the DDP step.

# %%
print(cards["torch.nn.Transformer"])
print(cards["TinyLM"])

# %% [markdown]
# All four cards side by side:

# %%
lab.plot_report_cards(cards)

# %% [markdown]
# ## 4. Reading the cards
#
# **Library, not architecture.** The x-transformers model and its twin compute the same function, yet they
# differ on four rows. The differences, computed from the two cards:

# %%
differ = [row.key for row, twin_row in zip(cards["x-transformers"].rows, cards["xtlab twin"].rows, strict=True)
          if row.status != twin_row.status]
for key in differ:
    print(f"{key}: x-transformers {cards['x-transformers'].status(key)}, "
          f"xtlab twin {cards['xtlab twin'].status(key)}")

# %% [markdown]
# x-transformers draws its layer-dropout skips from Python's `random`, so `torch.manual_seed` alone does not
# repeat a run; zero memories are attended as if they held tokens; and its tie is a function that a deep copy
# does not follow, so the copy is not even independent: its loss sends gradients into the original's embedding.
# The panel shows the first one: two runs with the same torch seed and different Python seeds. Choose the model
# and the layer-dropout probability.

# %%
panel = lab.seeding_panel({"x-transformers": x_model, "xtlab twin": twin})
panel

# %% [markdown]
# **Architecture, not library.** Both cards fail the segmented-versus-full row, by the same amount. Two
# features of this decoder tie something to absolute positions. Memory key/values are concatenated to the keys
# after the rotation, so they are never rotated: a query's score against them depends on the query's own
# position, which restarts in every segment. Memory tokens are prepended again in every segment and there they
# attend to the XL memories. The same decoder can be built with each feature on or off. Predict which builds keep
# the invariant.

# %%
segment_question = predict("Which of the four builds (memory tokens on/off x memory key/values on/off) give a "
                           "segmented pass equal to the full pass?",
                           {"all four": tuple(lab.FEATURES), "only the build with neither": ((False, False),),
                            "none of them": ()})
segment_question

# %%
by_features = lab.segmented_by_memory_features(seed=0, device=device)
segment_question.gate(lambda: print("\n".join(
    f"memory tokens {memory_tokens!s:>5}, memory key/values {memory_kv!s:>5}: {row.status:>5}, "
    f"{row.evidence.split(': ')[1]}" for (memory_tokens, memory_kv), row in by_features.items())),
    what="the four builds' segmented-versus-full rows")

# %%
segment_question.reveal(lab.holding_builds(by_features),
                        why=f"{len(lab.holding_builds(by_features))} of {len(by_features)} builds hold: "
                            f"{lab.holding_builds(by_features)} (memory tokens, memory key/values)")

# %% [markdown]
# **Layer dropout and DDP.** Every model with layer dropout fails the first row: some steps leave whole blocks
# without a gradient, so DDP needs `find_unused_parameters=True`. With layer dropout off (the DDP row), the
# three models without a dead parameter train under DDP and their ranks end bit-identical; TinyLM does not:

# %%
print(cards["TinyLM"].row("unused_parameters").evidence)
print(cards["TinyLM"].row("ddp_step").evidence)

# %% [markdown]
# ## 5. Exercises
#
# **Exercise 1.** Write the adapter for TinyLM (`lab.TinyLM`; `print(tiny)` shows its modules). Return a
# `ModelAdapter` with: `make_batch(model, generator)` giving `(tokens,)`, a `(2, model.max_len)` tensor of ids in
# `[0, model.num_tokens)` drawn from the generator; `loss(model, batch)`, the next-token cross-entropy; `forward`;
# the embedding/output pair (attribute paths of the modules); and `get_layer_dropout`/`set_layer_dropout` for the
# attribute the forward pass reads. TinyLM keeps no memories. The checker tries your hooks on two sizes, then
# audits TinyLM with your adapter and compares the card with the reference's. It also calls your loss on the model
# wrapped the way `DistributedDataParallel` wraps it (a module that only forwards calls).


# %%
def adapter_for_tiny_lm(model):
    ### BEGIN SOLUTION
    import torch.nn.functional as F

    def make_batch(model, generator):
        tokens = torch.randint(0, model.num_tokens, (2, model.max_len), generator=generator)
        return (tokens.to(model.embed.weight.device),)

    def forward(model, batch):
        return model(batch[0])

    def loss(model, batch):
        tokens = batch[0]
        logits = model(tokens[:, :-1])
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1))

    def get_layer_dropout(model):
        return model.block_drop

    def set_layer_dropout(model, p):
        model.block_drop = p

    return ModelAdapter("TinyLM", make_batch, loss, forward, embedding="embed", output="head",
                        get_layer_dropout=get_layer_dropout, set_layer_dropout=set_layer_dropout)
    ### END SOLUTION


# %%
lab.check("adapter_for_tiny_lm", adapter_for_tiny_lm)

# %% [markdown]
# **Exercise 2.** Write an invariant the course did not have: a language model's output at position `t` must
# not depend on any later token. `outputs_ignore_later_tokens(model, adapter)` returns `True` when, for every
# position `t`, replacing the tokens after `t` leaves the outputs at positions `0..t` unchanged (use
# `adapter.make_batch` and `adapter.forward`). The checker runs it on TinyLMs with a planted bug, a causal mask
# off by one (`lab.planted_pair()` builds one with its fixed twin), on the fixed twins, as built: in training
# mode, and on a hidden model the notebook never shows, whose leak sits somewhere else.


# %%
def outputs_ignore_later_tokens(model, adapter):
    ### BEGIN SOLUTION
    model.eval()
    tokens = adapter.make_batch(model, torch.Generator().manual_seed(0))[0]
    other = adapter.make_batch(model, torch.Generator().manual_seed(1))[0]
    with torch.no_grad():
        before = adapter.forward(model, (tokens,))
        for t in range(tokens.shape[1] - 1):
            changed = torch.cat((tokens[:, : t + 1], other[:, t + 1:]), dim=1)
            after = adapter.forward(model, (changed,))
            if not torch.allclose(before[:, : t + 1], after[:, : t + 1], atol=1e-5):
                return False
    return True
    ### END SOLUTION


# %%
lab.check("outputs_ignore_later_tokens", outputs_ignore_later_tokens)

# %% [markdown]
# An invariant plugs into the report card as an extra row (`extra_checks`). Here the lab's reference check runs
# on the planted bug and its fixed twin:

# %%
planted, fixed = lab.planted_pair(seed=0)
for name, model in (("planted bug", planted), ("fixed twin", fixed)):
    model = model.to(device)
    card = xtlab.audit(model, lab.tiny_lm_adapter(model), name=name, ddp=False,
                       extra_checks={"outputs ignore later tokens": lab.causality_reference})
    leak = lab.first_leaking_position(model, lab.tiny_lm_adapter(model))
    print(f"{name}: {card.status('outputs ignore later tokens')}; first position that sees the next token: {leak}")

# %% [markdown]
# ## 6. Last exercise: a model the notebook never showed
#
# The card's rows are the course's instruments, and each works on any `nn.Module`: `inspect_ties` (lab 02) groups
# the names of one Parameter object, `find_unused_parameters` (lab 05) runs one backward pass and lists the
# trainable parameters left with `.grad` `None`, and `describe_parameters` (lab 04) puts each parameter in a
# weight-decay group by its type. Their interfaces, with the lines that decide marked:

# %%
from xtlab.diagnostics.model_audit import ModelSnapshot, layer_dropout_set
from xtlab.diagnostics.model_audit.model_state import global_random_state_kept
from xtlab.diagnostics.optimizer_groups import describe_parameters
from xtlab.diagnostics.ties import inspect_ties
from xtlab.diagnostics.unused_parameters import find_unused_parameters

show_source(inspect_ties, emphasize=["remove_duplicate=False", "id(parameter)"])

# %%
show_source(find_unused_parameters, emphasize=["requires_grad]", "grad is None", "parameter.grad = grad"])

# %%
show_source(describe_parameters, emphasize=["classify_parameter(", "FROZEN", "NO_DECAY if"])

# %% [markdown]
# An audit measures and changes nothing: every row ran on a `ModelSnapshot` of the model, restored afterwards,
# inside `global_random_state_kept()` (Python's, NumPy's and torch's generators put back), and with
# `layer_dropout_set(model, adapter, p)` the adapter's layer dropout is `p` inside the block only (nothing happens
# when the adapter has no such hook).

# %%
show_source(ModelSnapshot, emphasize=["def restore", "training"])

# %% [markdown]
# **Exercise 3.** Write `audit_unknown(model, adapter)` for a model you have never seen (an `nn.Module` and its
# `ModelAdapter`). Return a dict:
# - `"tied"`: one list per tie, every name of that Parameter object as `named_parameters(remove_duplicate=False)`
#   spells them, each tie once (on TinyLM: `[["embed.weight", "head.weight"]]`);
# - `"unused"`: the trainable parameters that one training step leaves with `.grad` `None`: the model in training
#   mode, layer dropout off through the adapter, `adapter.loss` on `adapter.make_batch(model,
#   torch.Generator().manual_seed(0))`;
# - `"no_decay"`: the names `describe_parameters` (the lab's rule, by type) puts in the `no_decay` group.
#
# Leave the model as you found it (every training flag, tensor, buffer, `.grad`, `requires_grad` and the layer
# dropout) and draw nothing from the global random generators. The checker runs your function on four hidden
# models, in designs this notebook never shows, and compares with their findings.


# %%
def audit_unknown(model, adapter):
    ### BEGIN SOLUTION
    snapshot = ModelSnapshot(model)
    try:
        with global_random_state_kept():
            model.train()
            with layer_dropout_set(model, adapter, 0.0):
                batch = adapter.make_batch(model, torch.Generator().manual_seed(0))
                unused = find_unused_parameters(model, adapter.loss, batch)
    finally:
        snapshot.restore()
    return {"tied": [list(group) for group in inspect_ties(model).tied],
            "unused": [parameter.name for parameter in unused],
            "no_decay": [row.name for row in describe_parameters(model) if row.group == "no_decay"]}
    ### END SOLUTION


# %%
audit_verdict = lab.check("audit_unknown", audit_unknown)
audit_verdict

# %% [markdown]
# Your audit on TinyLM, built in section 1 and not among the hidden models (until your function passes, the
# reference runs here), next to the unused row of its report card:

# %%
findings = lab.findings_on(audit_unknown if audit_verdict.passed else None, tiny, lab.tiny_lm_adapter(tiny))
print(f"{findings.whose}: tied {findings.tied}")
print(f"unused ({len(findings.unused)}): {findings.unused}")
print(f"no decay ({len(findings.no_decay)}): {findings.no_decay}")
print(f"the card: {cards['TinyLM'].row('unused_parameters').evidence}")

# %% [markdown]
# The same instruments, the same answer: the two `value_head` parameters are the only unused ones, and the tie
# by assignment is one Parameter under two names, so it appears once in the no-decay group, as `embed.weight`.

# %% [markdown]
# ## Next
#
# Audit a model of your own: `xtlab.audit(model)` for the three ready kinds, or `xtlab.audit(model, adapter)`
# with an adapter like yours. Write its functions at module level and it also gets the DDP row. From a shell (or
# CI: the exit status is non-zero when a row fails or could not run):
#
#     python -m xtlab.audit mypackage.models:build_model --adapter mypackage.models:adapter_for --report card.md
#
# Go back to `00_start_here.ipynb` for the map of the course.
