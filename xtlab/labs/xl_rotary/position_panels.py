"""Lab 03 plots and panel for positions: the key positions of each scheme and whether it keeps the invariant."""

from __future__ import annotations

import ipywidgets as widgets
import numpy as np
from matplotlib.figure import Figure

from xtlab.labs.xl_rotary.models import shown_diff
from xtlab.labs.xl_rotary.positions import PositionSchemes, position_schemes
from xtlab.widgets.figures import new_figure
from xtlab.widgets.panel import LabPanel

MEMORY_COLOR, CURRENT_COLOR = "#E69F00", "#0072B2"  # Okabe-Ito orange and blue


def plot_position_schemes(result: PositionSchemes) -> Figure:
    """One row per scheme: the position of each key (orange: memories, blue: current tokens), the invariant in the
    title."""
    schemes = list(result.positions)
    fig = new_figure(7.5, 1.6 + 1.3 * len(schemes))
    axes = np.atleast_1d(fig.subplots(len(schemes), 1, sharex=True))
    index = np.arange(result.num_mems + result.seq_len)
    colors = [MEMORY_COLOR] * result.num_mems + [CURRENT_COLOR] * result.seq_len
    for ax, scheme in zip(axes, schemes, strict=True):
        values = np.array(result.positions[scheme])
        ax.scatter(index, values, c=colors, s=36, zorder=3)
        for i, v in zip(index, values, strict=True):
            ax.annotate(str(int(v)), (i, v), textcoords="offset points", xytext=(0, 5), ha="center", fontsize=7)
        ax.axvline(result.num_mems - 0.5, color="gray", linestyle=":")
        verdict = "equals the full pass" if result.agrees[scheme] else "differs from the full pass"
        ax.set_title(f"{scheme}: segment {verdict} (max |diff| {shown_diff(result.gap[scheme])})", fontsize=9)
        ax.set_ylabel("position")
        ax.margins(y=0.4)
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
