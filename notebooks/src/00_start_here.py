# %% [markdown]
# # Start here
#
# xtlab teaches how transformer internals really behave: you break them, predict what happens, write the
# mechanism yourself and check it. Every number you read in these notebooks is printed by a cell, and a test
# checks it.
#
# Run the cells from top to bottom (**Run → Run All Cells**).

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

# %% [markdown]
# ## The map of the labs
#
# Each lab is one notebook and one package of the library (`xtlab.labs.<name>`). They build on each other, but
# each runs on its own. The estimated time is in minutes.

# %%
from xtlab.catalog import lab_table

print(lab_table())

# %% [markdown]
# ## How the panels work
#
# Each lab has panels like the one below: controls on top, a plot and a short summary under them. Move a slider
# and the plot re-draws. The panel only *calls* functions from `xtlab`, so everything it shows can also be computed
# in a plain cell, as the cell after it does.
#
# This one answers a question from lab 01: if each of L blocks is skipped with probability p, how often does a
# forward pass run every block?

# %%
panel = lab.tour_panel()
panel

# %% [markdown]
# The same numbers without a widget: the panel's `compute` function, called directly.

# %%
probs = lab.all_blocks_probability(p=0.1, max_blocks=12)
print(f"p=0.1: P(no block skipped) is {probs[0]:.3f} for 1 block and {probs[-1]:.3f} for 12 blocks")

# %% [markdown]
# ## How predictions work
#
# Before a cell computes something surprising, a lab asks you to commit to an answer: pick one and press
# **Commit**. The next cell computes the answer and reveals it next to yours (on a page without a kernel the
# reveal stays folded until you open it).

# %%
depth_question = predict("With p = 0.1, is a step that runs all 12 blocks more likely than not?",
                         {"more likely than not": True, "less likely than not": False})
depth_question

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
# ## Next
#
# Open `01_layer_dropout.ipynb`.
