# %% [markdown]
# # Start here
#
# xtlab teaches how transformer internals really behave: you break them, predict what happens, write the
# mechanism yourself and check it. Every number you read in these notebooks is printed by a cell, and a test
# checks it.
#
# **For whom.** You know PyTorch basics (tensors, `nn.Module`, a training loop with `loss.backward()` and an
# optimizer) and what attention does (queries, keys, values, a softmax over keys). No distributed-training or
# x-transformers experience is needed.
#
# **What you will be able to do** after the course: explain, measure and fix five ways transformer training goes
# quietly wrong — blocks that lose their gradient, ties that come apart, memories at the wrong positions,
# weight decay on the wrong parameters, and parameters that break distributed training — on xtlab's model and on
# the real `x-transformers` package.
#
# Each lab answers one public technical article (in Chinese); the course's English page for each, with its
# claims numbered, is in [`xtlab/articles/`](../xtlab/articles/README.md): the labs' audits cite those numbers.
#
# This notebook takes about 10 minutes. Run the cells from top to bottom (**Run → Run All Cells**).

# %% [markdown]
# ## Where does this run?
#
# The labs pick the device for you: a CUDA GPU when one is present, else the CPU. The line below names it, with
# the versions of the libraries in use.

# %%
from importlib.metadata import version

import torch

import xtlab
from xtlab import default_device, describe_device
from xtlab.labs import tour as lab
from xtlab.widgets import predict, show_source

device = default_device()
print(f"device: {describe_device(device)}")
print(f"torch {torch.__version__}, xtlab {xtlab.__version__}, x-transformers {version('x-transformers')}")
print(", ".join(f"{name} {found}" for name, found in lab.package_versions().items()))

# %% [markdown]
# Do widgets render here? The line below is a widget: in JupyterLab it shows a green tick; on a page without a
# kernel it shows what to do instead.

# %%
lab.widget_check()

# %% [markdown]
# ## The map of the labs
#
# Each lab is one notebook and one package of the library (`xtlab.labs.<name>`). Take them in order: each one
# uses an idea from the one before (lab 05's distributed failure, for instance, is lab 01's missing gradients
# on several processes), but each also runs on its own. The table gives the objective of each lab and an
# estimated time in minutes.

# %%
from xtlab.catalog import LABS, lab_table

print(lab_table())
print(f"total: about {sum(entry.minutes for entry in LABS)} minutes")

# %% [markdown]
# ## The model the labs take apart
#
# The labs all work on one kind of model: a decoder-only transformer with an embedding, residual blocks
# (attention, then feed-forward, each behind a norm), XL memories, rotary positions and an output head tied to
# the embedding. The map below is drawn from a real model's `named_modules()` (its special parameters, memory
# tokens and memory key/values, get rows of their own); a dot marks where each lab works.

# %%
course_model = lab.course_model()
map_rows = lab.model_map(course_model)
print("\n".join(lab.lab_area_lines()))
lab.plot_model_map(map_rows)

# %% [markdown]
# ## How predictions work
#
# Before a cell computes something surprising, a lab asks you to commit to an answer: pick one and press
# **Commit**, or, where widgets do not show (VS Code, Colab without widgets, a console), commit in code as the
# question says, e.g. `depth_question.commit("less likely than not")`. Nothing that gives the answer away shows
# before you commit: the cells that would are held back until then, and the reveal says how to commit.
#
# A question from lab 01: if each of L blocks is skipped with probability p, how often does a forward pass run
# every block?

# %%
depth_question = predict("With p = 0.1, is a step that runs all 12 blocks more likely than not?",
                         {"more likely than not": True, "less likely than not": False})
depth_question

# %% [markdown]
# ## How the panels work
#
# Each lab has panels like the one below: controls on top, a plot and a short summary under them. Move a slider
# and the plot re-draws. The panel only *calls* functions from `xtlab`, so everything it shows can also be computed
# in a plain cell, as the cell after it does. This panel plots the answer to the question above, so it shows once
# you have committed.

# %%
panel = lab.tour_panel()
depth_question.gate(lambda: panel, what="the panel")

# %% [markdown]
# The same numbers without a widget: the panel's `compute` function, called directly (held back too).

# %%
probs = lab.all_blocks_probability(p=0.1, max_blocks=12)
depth_question.gate(lambda: print(f"p=0.1: P(no block skipped) is {probs[0]:.3f} for 1 block and {probs[-1]:.3f} "
                                  "for 12 blocks"), what="the probabilities")

# %% [markdown]
# The reveal computes the answer and judges your prediction (on a page without a kernel it stays folded until
# you open it):

# %%
depth_question.reveal(bool(probs[-1] > 0.5), why=f"(1 - 0.1)^12 = {probs[-1]:.3f}")

# %% [markdown]
# ## How the mechanism is shown
#
# Each lab shows the few library lines it is about, straight from the source, so you read the real code before
# you write it yourself. Here is the function the panel above calls:

# %%
show_source(lab.all_blocks_probability)

# %% [markdown]
# ## How exercises work
#
# An exercise cell holds a function whose body is `raise NotImplementedError()`. The cell after it checks your
# function and prints a verdict: **NOT YET** while the stub is still there, **TRY AGAIN** with what went wrong and
# a hint, **PASS** when it is right. Replace the `raise` line with your code and run both cells again. A checker
# never crashes the notebook and stops code that runs too long.
#
# Try it: write the chance that a forward pass runs every one of `num_blocks` blocks.


# %%
def chance_every_block_runs(num_blocks, p):
    ### BEGIN SOLUTION
    return (1 - p) ** num_blocks
    ### END SOLUTION


# %%
lab.check("chance_every_block_runs", chance_every_block_runs)

# %% [markdown]
# The reference answers live in the solution edition of every notebook, in the repository's `solutions/` folder
# (for teachers and for checking yourself after an honest try).
#
# ## Running the checks and running on a GPU
#
# - `make test` (from the repository root) runs every test of the course: the library's, every exercise checker
#   against right and wrong answers, and both editions of every notebook under nbval.
# - The labs pick the device themselves (`xtlab.default_device()`): on a machine with an NVIDIA GPU and a CUDA
#   build of PyTorch they run on `cuda`, and the first cell of each lab names the device. The device this
#   notebook found:

# %%
print(f"the labs here run on: {describe_device(device)}")

# %% [markdown]
# ## Next
#
# Open `01_layer_dropout.ipynb`.
