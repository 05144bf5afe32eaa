"""Lab 03 plots and panel for positions: the key positions of each scheme and whether it keeps the invariant."""

from __future__ import annotations

import ipywidgets as widgets
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from xtlab.labs.xl_rotary.models import shown_diff
from xtlab.labs.xl_rotary.positions import PositionSchemes, position_schemes
from xtlab.widgets.figures import CourseFigure, new_figure, reuse_figure
from xtlab.widgets.panel import LabPanel

MEMORY_COLOR, CURRENT_COLOR = "#E69F00", "#0072B2"  # Okabe-Ito orange and blue


def _build_position_schemes(num_schemes: int) -> CourseFigure:
    height = 1.6 + 1.3 * num_schemes
    # fixed places (no layout pass per re-draw); tests/labs/test_xl_rotary_panels.py checks them at the extremes
    fig = new_figure(7.5, height, margins={"left": 0.1, "right": 0.98, "bottom": 0.55 / height,
                                           "top": 1 - 0.3 / height, "hspace": 0.55})
    axes = np.atleast_1d(fig.subplots(num_schemes, 1, sharex=True))
    for ax in axes:
        points = ax.scatter([], [], s=36, zorder=3)
        line = ax.axvline(0, color="gray", linestyle=":")
        ax.set_ylabel("position")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # key indices and positions are whole numbers
        ax.yaxis.set_major_locator(MaxNLocator(nbins=4, integer=True))
        fig.parts[ax] = (points, line, [])  # the list: value labels, grown as needed
    return fig


def plot_position_schemes(result: PositionSchemes, figure: Figure | None = None) -> Figure:
    """One row per scheme: the position of each key (orange: memories, blue: current tokens), the invariant in the
    title. ``figure``: a figure this function drew before, to draw into (a panel's re-draw)."""
    schemes = list(result.positions)
    fig = reuse_figure(figure, _build_position_schemes, len(schemes))
    index = np.arange(result.num_mems + result.seq_len)
    colors = [MEMORY_COLOR] * result.num_mems + [CURRENT_COLOR] * result.seq_len
    axes = list(fig.parts)
    for ax, scheme in zip(axes, schemes, strict=True):
        points, line, labels = fig.parts[ax]
        values = np.array(result.positions[scheme])
        offsets = np.column_stack([index, values]).astype(float)
        points.set_offsets(offsets)
        points.set_facecolors(colors)
        while len(labels) < len(index):
            labels.append(ax.annotate("", (0, 0), textcoords="offset points", xytext=(0, 5), ha="center",
                                      fontsize=7))
        for k, label in enumerate(labels):
            label.set_visible(k < len(index))
            if k < len(index):
                label.set_text(str(int(values[k])))
                label.xy = (index[k], values[k])
        line.set_xdata([result.num_mems - 0.5] * 2)
        verdict = "equals the full pass" if result.agrees[scheme] else "differs from the full pass"
        ax.set_title(f"{scheme}: segment {verdict} (max |diff| {shown_diff(result.gap[scheme])})", fontsize=9)
        low, high = float(values.min()), float(values.max())
        pad = max(1.0, 0.4 * (high - low))  # room for the value labels above the points
        ax.set_ylim(low - pad, high + pad)
        ax.set_xlim(-1, len(index))
    axes[-1].set_xlabel(f"key index, oldest first (orange: {result.num_mems} memories, blue: {result.seq_len} "
                        "current tokens)")
    return fig


def summarize_position_schemes(result: PositionSchemes) -> str:
    rows = "".join(f"<tr><td>{scheme}</td><td>{shown_diff(result.gap[scheme])}</td>"
                   f"<td>{result.offsets_kept[scheme]}</td><td>{result.agrees[scheme]}</td></tr>"
                   for scheme in result.positions)
    return ("<table><tr><th>scheme</th><th>max |segment - full|</th><th>offsets of the full pass</th>"
            f"<th>equal</th></tr>{rows}</table>")


def positions_panel() -> LabPanel:
    """Sliders for M and T; the three schemes re-draw with their measured gap."""
    controls = {
        "num_mems": widgets.IntSlider(value=4, min=0, max=10, description="M (memory)"),
        "seq_len": widgets.IntSlider(value=6, min=1, max=12, description="T (segment)"),
    }
    return LabPanel(controls, compute=position_schemes, plot=plot_position_schemes,
                    summarize=summarize_position_schemes, title="Where memory keys sit, and whether it matters")
