"""The tour notebook's example widget: how likely is a step that runs every block?"""

from __future__ import annotations

import ipywidgets as widgets
import numpy as np
from matplotlib.figure import Figure

from xtlab.widgets.figures import new_figure
from xtlab.widgets.panel import LabPanel


def all_blocks_probability(p: float, max_blocks: int) -> np.ndarray:
    """``(1 - p) ** L`` for ``L = 1..max_blocks``: the chance a forward pass skips no block."""
    if not 0.0 <= p < 1.0:
        raise ValueError(f"layer dropout p must be in [0, 1), but got {p}")
    if max_blocks < 1:
        raise ValueError(f"max_blocks must be >= 1, but got {max_blocks}")
    return (1.0 - p) ** np.arange(1, max_blocks + 1)


def plot_all_blocks_probability(probabilities: np.ndarray) -> Figure:
    fig = new_figure(6, 3)
    ax = fig.add_subplot()
    blocks = np.arange(1, len(probabilities) + 1)
    ax.plot(blocks, probabilities, marker="o")
    ax.set(xlabel="blocks L", ylabel="P(no block skipped)", ylim=(0, 1.05), title="(1 - p)^L")
    return fig


def tour_panel() -> LabPanel:
    """A slider for p and one for the number of blocks; the curve re-draws on every change."""
    controls = {
        "p": widgets.FloatSlider(value=0.1, min=0.0, max=0.9, step=0.05, description="p"),
        "max_blocks": widgets.IntSlider(value=12, min=1, max=48, description="blocks"),
    }
    return LabPanel(
        controls,
        compute=all_blocks_probability,
        plot=plot_all_blocks_probability,
        summarize=lambda probs: f"With these settings, P(no block skipped) at the deepest L is {probs[-1]:.3f}.",
        title="Try it: move a slider",
    )
