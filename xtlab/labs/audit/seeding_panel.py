"""Panel: the same torch seed, two Python seeds. Which blocks get a gradient at each step, in each run?

A library whose layer dropout draws from torch repeats its skips; one that draws from Python's ``random``
does not, although ``torch.manual_seed`` was called the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import ipywidgets as widgets
import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from torch import nn

from xtlab._checks import check_choice, check_int, check_probability, check_type
from xtlab.diagnostics import GradientState
from xtlab.diagnostics.model_audit import adapter_for, layer_dropout_set, training_presence
from xtlab.threads import one_cpu_thread
from xtlab.widgets import LabPanel
from xtlab.widgets.figures import new_figure

BLOCK_PREFIX = "attn_layers.layers."
PYTHON_SEEDS = (0, 1)
TORCH_SEED = 0
STEPS = 10
GOT, MISSED = "#0072B2", "#E69F00"  # Okabe-Ito blue / orange


@dataclass(frozen=True)
class SeedingRuns:
    """Block-level gradient presence of two runs that share the torch seed.

    Attributes:
        library: which model. p: its layer dropout. blocks: block labels.
        runs: per Python seed, ``[step][block]`` True when the block got a gradient.
    """

    library: str
    p: float
    blocks: tuple[str, ...]
    runs: dict[int, tuple[tuple[bool, ...], ...]]

    @property
    def steps_that_differ(self) -> int:
        first, second = (self.runs[seed] for seed in PYTHON_SEEDS)
        return sum(a != b for a, b in zip(first, second, strict=True))

    @property
    def skipped_cells(self) -> int:
        return sum(not got for run in self.runs.values() for row in run for got in row)


def seeding_runs(model: nn.Module, library: str, p: float, steps: int = STEPS) -> SeedingRuns:
    """Two training runs of ``steps`` backward passes at layer dropout ``p``: torch seed 0 both times, Python
    (and NumPy) seed 0 then 1; presence grouped per block (``attn_layers.layers.<i>``)."""
    check_type("library", library, str, "a str")
    check_probability("p", p)
    check_int("steps", steps, minimum=1, maximum=200)
    adapter = adapter_for(model)
    runs = {}
    with one_cpu_thread(), layer_dropout_set(model, adapter, p):
        was_training = model.training
        for python_seed in PYTHON_SEEDS:
            presence = training_presence(model, adapter, steps, TORCH_SEED, python_seed).grouped(3)
            columns = [i for i, label in enumerate(presence.labels) if label.startswith(BLOCK_PREFIX)]
            blocks = tuple(presence.labels[i] for i in columns)
            runs[python_seed] = tuple(tuple(row[i] != GradientState.NO_GRADIENT for i in columns)
                                      for row in presence.states)
        model.train(was_training)
        model.zero_grad(set_to_none=True)
    return SeedingRuns(library, p, blocks, runs)


def plot_seeding_runs(result: SeedingRuns) -> Figure:
    """Two heatmaps, blocks x steps: blue got a gradient, orange skipped (no gradient)."""
    fig = new_figure(7.5, 2.6)
    axes = fig.subplots(1, 2, sharey=True)
    colours = ListedColormap([MISSED, GOT])
    for ax, seed in zip(axes, PYTHON_SEEDS, strict=True):
        matrix = np.array(result.runs[seed], dtype=float).T
        ax.imshow(matrix, cmap=colours, vmin=0, vmax=1, aspect="auto", interpolation="nearest")
        ax.set_title(f"torch seed {TORCH_SEED}, Python seed {seed}", fontsize=9)
        ax.set_xlabel("training step")
        ax.set_yticks(range(len(result.blocks)), [label.removeprefix("attn_layers.") for label in result.blocks],
                      fontsize=7)
    axes[0].set_ylabel("block")
    verdict = "repeat" if result.steps_that_differ == 0 else f"differ at {result.steps_that_differ} steps"
    fig.suptitle(f"{result.library}, layer dropout p={result.p:g}: the skips {verdict}", fontsize=10)
    fig.legend(handles=[Patch(color=GOT, label="got a gradient"), Patch(color=MISSED, label="skipped: no gradient")],
               loc="outside lower center", ncols=2, fontsize=8, frameon=False)
    return fig


def summarize_seeding_runs(result: SeedingRuns) -> str:
    return (f"{result.library}, p={result.p:g}: {result.skipped_cells} skipped (block, step) cells over both runs; "
            f"the two runs differ at {result.steps_that_differ} of {len(result.runs[PYTHON_SEEDS[0]])} steps.")


def seeding_panel(models: Mapping[str, nn.Module]) -> LabPanel:
    """Pick a library and a layer-dropout probability; see whether torch's seed alone repeats the skips."""
    check_type("models", models, Mapping, "a mapping library name -> model")
    names = list(models)

    def compute(library: str, p: float) -> SeedingRuns:
        check_choice("library", library, names)
        return seeding_runs(models[library], library, p)

    controls = {
        "library": widgets.Dropdown(options=names, value=names[0], description="model"),
        "p": widgets.FloatSlider(value=0.3, min=0.1, max=0.6, step=0.1, description="layer dropout"),
    }
    return LabPanel(controls, compute, plot_seeding_runs, summarize_seeding_runs,
                    title="Same torch seed, different Python seed: do the skips repeat?")
