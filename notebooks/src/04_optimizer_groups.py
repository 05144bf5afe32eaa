# %% [markdown]
# # Lab 04 — Optimizer parameter groups and weight decay
#
# Users building AdamW for x-transformers models keep asking the same question: **which parameters should get
# weight decay?** The usual answer — no decay for biases, norm gains (LayerNorm, RMSNorm, ScaleNorm), embeddings,
# memory tokens and attention memory key/values; decay for weight matrices — comes in variants (the popular
# shortcut is "decay everything with ndim >= 2") and is partly folklore.
#
# In this lab you inspect the groups, see where the two strategies disagree, catch grouping mistakes, and
# watch what decay actually does to the parameters the folklore is about.

# %%
import torch

from xtlab import default_device, describe_device
from xtlab.diagnostics.optimizer_groups import classify_parameter
from xtlab.labs import optimizer_groups as lab
from xtlab.widgets import predict, show_source

device = default_device()
print(f"device: {describe_device(device)}")

# %% [markdown]
# ## 1. A specimen with every kind of special parameter
#
# An xtlab stack uses one norm type throughout, so the lab's specimen `TwoNormLM` pairs two tiny language models —
# one built with `use_rmsnorm=True`, one with `use_scalenorm=True` — and averages their logits. Each has
# `num_memory_tokens=2`, `attn_num_mem_kv=2`, biases in its feed-forward layers, a learned position embedding and
# `tie_embedding=True`.

# %%
model = lab.specimen_model()
print(f"{sum(1 for _ in model.named_parameters())} parameters, "
      f"{sum(p.numel() for p in model.parameters())} elements")
print([name for name, _ in model.rmsnorm_lm.named_parameters()])

# %% [markdown]
# ### The mechanism
#
# xtlab decides a parameter's category from the module that holds it and its role, in `classify_parameter`;
# `by_type` then exempts the categories in its exempt list from decay. Read it before the table:

# %%
show_source(classify_parameter, emphasize=["return"])

# %% [markdown]
# The panel below lists **every** parameter: name, shape, numel, the group it lands in and the reason.
# Switch the strategy, take categories out of the exempt list, move the weight decay: the table (under the chart)
# and the elements per group follow. The exempt list applies to `by_type`; `by_ndim` looks only at `ndim`.

# %%
table_panel = lab.group_table_panel()
table_panel

# %% [markdown]
# ## 2. Totals per group, and where the two strategies disagree
#
# The same numbers without the widget: the count and number of elements in each group, for both strategies.

# %%
for strategy in ("by_type", "by_ndim"):
    table = lab.group_table(strategy, weight_decay=0.1)
    print(strategy, [(t.group, t.count, t.numel) for t in table.totals])

# %% [markdown]
# The rows where the strategies disagree, with each one's reason. `by_ndim` decays every 2-D or 3-D
# tensor, so it decays memory tokens, attention memory key/values and embeddings — parameters that are
# *data-like* (they play the role of tokens or keys) rather than linear maps.

# %%
embedding_question = predict("Do by_type and by_ndim put the token embedding's weight in the same group?",
                             {"the same group": True, "different groups": False})
embedding_question

# %%
for d in lab.disagreements():
    print(f"{d.name:45s} {str(d.shape):12s} by_type: {d.by_type_group:8s} ({d.by_type_reason}); "
          f"by_ndim: {d.by_ndim_group} ({d.by_ndim_reason})")

# %%
embedding_name = "rmsnorm_lm.token_emb.weight"
groups = {strategy: lab.row_named(lab.group_table(strategy).rows, embedding_name).group
          for strategy in ("by_type", "by_ndim")}
embedding_question.reveal(groups["by_type"] == groups["by_ndim"],
                          why=f"{embedding_name}: by_type -> {groups['by_type']}, by_ndim -> {groups['by_ndim']}")

# %% [markdown]
# They agree on the ScaleNorm gain — but for different reasons: `by_type` knows it is a norm gain, `by_ndim`
# only sees a tensor of shape `(1,)`. Had ScaleNorm stored its scalar as a `(1, 1)` tensor, `by_ndim`
# would have decayed it.

# %%
name = "scalenorm_lm.attn_layers.final_norm.g"
for strategy in ("by_type", "by_ndim"):
    row = lab.row_named(lab.group_table(strategy).rows, name)
    print(f"{strategy}: {row.name} {row.shape} -> {row.group} ({row.reason})")

# %% [markdown]
# ## 3. The completeness check catches real mistakes
#
# **Mistake 1: a forgotten parameter.** A common hand-written grouping walks the modules it knows (`nn.Linear`,
# `nn.Embedding`, norms). Memory tokens and `mem_k`/`mem_v` are owned directly by the wrapper and the attention,
# so they belong to no known module. torch.optim accepts the groups without a word; the parameters simply never
# train.

# %%
mistake = lab.forgotten_parameter_mistake()
print("torch.optim.AdamW raised:", mistake.torch_error or "nothing")
print("what went wrong instead:", mistake.torch_silent_damage)
print("xtlab check_param_groups:", mistake.xtlab_error)

# %% [markdown]
# **Mistake 2: a tied parameter listed twice.** With a naively tied model
# (`to_logits.weight = token_emb.weight`), looping over `named_parameters(remove_duplicate=False)` sees the
# same Parameter under both names: once as an embedding (no decay), once as an output matrix (decay).
# torch.optim does refuse this — but its message does not say which parameter or which groups.

# %%
mistake = lab.duplicate_tied_parameter_mistake()
print("torch.optim.AdamW raised:", mistake.torch_error)
print("xtlab check_param_groups:", mistake.xtlab_error)

# %% [markdown]
# ## 4. What decay does: memory tokens and a norm gain, step by step
#
# We train the specimen briefly on the bundled corpus with AdamW (strong decay, so a few dozen steps show it) under
# three groupings: `by type`, `by ndim`, and the one-liner many people start with,
# `AdamW(model.parameters(), weight_decay=wd)`, which decays everything. The plot tracks the L2 norm of the
# RMSNorm LM's memory tokens and of its final norm gain. The slider retrains (a second or two on a CPU).

# %%
decay_view = lab.decay_panel()
decay_view

# %%
trace = lab.norms_under_groupings(weight_decay=1.0, steps=60, lr=1e-2, device=device)
print("memory tokens keep their norm (within 10%) under 'by type':",
      abs(trace.ratio("by type", lab.MEMORY_TOKENS) - 1) < 0.1)
print("memory tokens lose over a third of their norm under 'by ndim':",
      trace.ratio("by ndim", lab.MEMORY_TOKENS) < 2 / 3)
print("norm gain shrinks more under 'decay everything' than under 'by type':",
      trace.ratio("decay everything", lab.NORM_GAIN) < trace.ratio("by type", lab.NORM_GAIN) - 0.2)

# %% [markdown]
# The gain shrinks a little under every grouping (that is the gradient at work), but only decay drags it
# down steadily. Memory tokens get a gradient only through attention, which is small next to a decay that
# multiplies them by `1 - lr * wd` every step: under `by ndim` they fade towards zero, and the model loses the
# learned slots it was given.

# %% [markdown]
# ## 5. The other answer to "should norm gains decay?"
#
# Decay pulls the *stored* value towards 0. If the gain is stored as is, 0 means "scale the normalised input to
# zero". If it is stored as an offset from 1 (`norm_unit_offset=True`, which x-transformers does by default:
# `norm_add_unit_offset=True`), 0 means "identity": decay now pulls the norm towards doing nothing special, a
# harmless default. Below, every parameter is decayed strongly and we plot the mean effective gain
# (what multiplies the normalised input) of all the specimen's norms.

# %%
offset_view = lab.unit_offset_panel()
offset_view

# %%
gains = lab.gains_under_strong_decay(weight_decay=5.0, steps=60, lr=1e-2, device=device)
as_is, offset = gains.gains["gain stored as is"], gains.gains["gain stored as offset from 1"]
print("gain stored as is falls below 0.3:", as_is[-1] < 0.3)
print("gain stored as offset from 1 stays within 0.1 of 1:", abs(offset[-1] - 1) < 0.1)
print("the offset model ends with the lower training loss:",
      gains.losses["gain stored as offset from 1"][-1] < gains.losses["gain stored as is"][-1])

# %% [markdown]
# ## 6. The same tools on a real x-transformers model
#
# `x_transformers` names things differently (`token_emb.emb.weight`, norms as `g`/`gamma` inside nested
# `ModuleList`s, separate `to_q`/`to_k`/`to_v`), but the instrument classifies by what a parameter is, so the
# grouping comes out the same: every category lands in the same single group as in the xtlab specimen.

# %%
from x_transformers import Decoder as XDecoder
from x_transformers import TransformerWrapper as XTW

from xtlab.diagnostics.optimizer_groups import check_param_groups, param_groups

real = XTW(num_tokens=44, max_seq_len=32, num_memory_tokens=2, tie_embedding=True,
           attn_layers=XDecoder(dim=32, depth=1, heads=2, attn_num_mem_kv=2, use_rmsnorm=True))
xt_table = lab.group_table("by_type", model=real)
for row in xt_table.rows:
    print(f"{row.name:40s} {str(row.shape):12s} {row.group:8s} {row.reason}")
print("complete and disjoint:", check_param_groups(real, param_groups(real, 0.1)).counts)
print("same group per category as the xtlab specimen:",
      lab.groups_by_category(xt_table.rows) == lab.groups_by_category(lab.group_table("by_type").rows))

# %% [markdown]
# ## 7. Which AdamW implementation?
#
# `build_adamw` builds AdamW over these groups and picks the fastest implementation available: `fused` (one
# kernel updates all of a group's parameters per step) where this torch has a fused kernel for the parameters'
# device — CUDA, and the CPU in recent torch releases — else torch's default (`foreach` over lists of tensors on
# CUDA, a per-parameter loop otherwise).

# %%
choice = lab.adamw_choice(device)
print("implementation:", choice.implementation)
print("why:", choice.reason)

# %% [markdown]
# ## Why it matters
#
# Weight decay is a prior that says "this parameter should be small". That is reasonable for a linear map, and
# wrong for a learned token, a learned key, or a scale whose natural value is 1. A grouping rule by `ndim` is a
# proxy for "is a linear map" that fails on memory tokens and memory key/values, and no rule helps if the groups
# forget a parameter: torch.optim will not tell you. Check the groups once, by name, when you build the optimizer.

# %% [markdown]
# ## Exercises
#
# **Exercise 1.** Write `my_param_groups(model, weight_decay)` returning two torch.optim groups that match the
# `by_type` rule. The checker runs it on models you have not seen (an x-transformers ScaleNorm LM and an xtlab
# encoder-decoder with LayerNorm), and gives your function a copy of each.


# %%
def my_param_groups(model, weight_decay):
    ### BEGIN SOLUTION
    decay, no_decay, seen = [], [], set()
    for module in model.modules():
        for leaf, parameter in module.named_parameters(recurse=False):
            if id(parameter) in seen or not parameter.requires_grad:
                continue  # a tied Parameter is listed once; frozen ones are not trained
            seen.add(id(parameter))
            is_memory = leaf in ("memory_tokens", "mem_k", "mem_v")
            is_matrix = parameter.ndim >= 2 and not isinstance(module, torch.nn.Embedding) and not is_memory
            (decay if is_matrix else no_decay).append(parameter)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    ### END SOLUTION


# %%
lab.check("my_param_groups", my_param_groups)

# %% [markdown]
# **Exercise 2.** Under `by_ndim`, which group does each of these specimen parameters land in? Answer
# `"decay"` or `"no_decay"` for each name, without looking at the table above.

# %%
print(lab.PREDICTION_NAMES)


# %%
def group_predictions():
    ### BEGIN SOLUTION
    return {
        "rmsnorm_lm.memory_tokens": "decay",
        "scalenorm_lm.attn_layers.final_norm.g": "no_decay",
        "rmsnorm_lm.attn_layers.layers.0.fn.mem_k": "decay",
    }
    ### END SOLUTION


# %%
lab.check("group_predictions", group_predictions)

# %% [markdown]
# ## Next
#
# Open `05_encoder_decoder_ddp.ipynb`: an encoder's unused `to_logits` and what real DDP says about it.
