"""A heatmap of a ``GradientPresence``: rows (parameters or blocks) x steps, coloured by what each got.

Generic: any lab that records gradient presence can draw it, alone or inside a larger figure.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from matplotlib.patches import Patch

from xtlab.diagnostics import GradientPresence, GradientState
from xtlab.widgets.figures import new_figure

STATE_COLOURS = {  # Okabe-Ito vermillion and sky blue, and a light grey for the ordinary case
    GradientState.NO_GRADIENT: "#D55E00",
    GradientState.ZERO_GRADIENT: "#56B4E9",
    GradientState.NONZERO_GRADIENT: "#E5E5E5",
}
STATE_NAMES = {
    GradientState.NO_GRADIENT: "no gradient (None)",
    GradientState.ZERO_GRADIENT: "zero gradient",
    GradientState.NONZERO_GRADIENT: "gradient",
}


def draw_gradient_presence(ax: Axes, presence: GradientPresence, row_names: Sequence[str] | None = None,
                           legend: bool = True) -> AxesImage:
    """Draw ``presence`` on ``ax``: one row per label, one column per recorded step; return the heatmap image.

    Args:
        ax: the axes to draw on. presence: what a gradient-presence recorder returned (grouped or not).
        row_names: labels to show instead of ``presence.labels`` (same length).
        legend: add a legend naming the three states.
    """
    if not isinstance(presence, GradientPresence):
        raise TypeError(f"presence must be a GradientPresence, but got {type(presence).__name__}")
    names = list(presence.labels) if row_names is None else list(row_names)
    if len(names) != len(presence.labels):
        raise ValueError(f"row_names must have one name per row ({len(presence.labels)}), but got {len(names)}")
    image = gradient_presence_image(ax, names, legend)
    show_gradient_presence(image, presence)
    return image


def gradient_presence_image(ax: Axes, row_names: Sequence[str], legend: bool = True) -> AxesImage:
    """An empty heatmap with one row per name (fill it with :func:`show_gradient_presence`)."""
    states = list(GradientState)
    colours = ListedColormap([STATE_COLOURS[state] for state in states])
    image = ax.imshow(np.zeros((len(row_names), 1)), cmap=colours, vmin=-0.5, vmax=len(states) - 0.5,
                      aspect="auto", interpolation="nearest")
    ax.set_yticks(range(len(row_names)), row_names, fontsize=7)
    ax.set_xlabel("step")
    if legend:
        handles = [Patch(color=STATE_COLOURS[state], label=STATE_NAMES[state]) for state in states]
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7, frameon=False)
    return image


def show_gradient_presence(image: AxesImage, presence: GradientPresence) -> None:
    """Put ``presence`` into a heatmap made by :func:`gradient_presence_image` (same number of rows)."""
    rows = image.get_array().shape[0]
    if len(presence.labels) != rows:
        raise ValueError(f"presence must have {rows} rows, one per heatmap row, but got {len(presence.labels)}")
    matrix = np.array(presence.state_matrix(), dtype=float).reshape(len(presence.steps), rows).T
    image.set_data(matrix)
    image.set_extent((-0.5, len(presence.steps) - 0.5, rows - 0.5, -0.5))


def plot_gradient_presence(presence: GradientPresence, title: str = "Which rows got a gradient, step by step",
                           row_names: Sequence[str] | None = None) -> Figure:
    """A figure holding only the heatmap of ``presence`` (see :func:`draw_gradient_presence`)."""
    if not isinstance(presence, GradientPresence):
        raise TypeError(f"presence must be a GradientPresence, but got {type(presence).__name__}")
    fig = new_figure(7.5, 1.2 + 0.18 * len(presence.labels))
    ax = fig.add_subplot()
    draw_gradient_presence(ax, presence, row_names)
    ax.set_title(title, fontsize=10)
    return fig
