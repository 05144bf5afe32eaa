"""The report cards side by side: one column per model, one row per check, coloured by status."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from xtlab._checks import check_type
from xtlab.diagnostics.model_audit import COULD_NOT_RUN, FAILS, HOLDS, ReportCard
from xtlab.widgets.figures import new_figure

STATUS_COLOURS = {HOLDS: "#0072B2", FAILS: "#D55E00", COULD_NOT_RUN: "#DDDDDD"}  # Okabe-Ito blue, vermillion
SHORT_CHECKS = {
    "gradient_presence": "every step, every gradient",
    "layer_dropout_seeding": "skips seeded by torch",
    "mems_none_vs_zero": "mems=None = zero memories",
    "segmented_vs_full": "segmented XL = full pass",
    "tying_paths": "tie survives save/load, deepcopy",
    "deepcopy_independence": "deepcopy is independent",
    "optimizer_groups": "groups complete, disjoint",
    "decay_placement": "decay spares no-decay",
    "unused_parameters": "no unused parameters",
    "ddp_step": "2-process DDP step",
}


def plot_report_cards(cards: Mapping[str, ReportCard]) -> Figure:
    """A grid: checks (rows) x models (columns), blue holds, vermillion fails, grey could not run."""
    check_type("cards", cards, Mapping, "a mapping name -> ReportCard")
    names = list(cards)
    keys = [row.key for row in cards[names[0]].rows]
    statuses = list(STATUS_COLOURS)
    matrix = np.array([[statuses.index(cards[name].status(key)) for name in names] for key in keys], dtype=float)
    fig = new_figure(7.5, 0.9 + 0.3 * len(keys))
    ax = fig.add_subplot()
    ax.imshow(matrix, cmap=ListedColormap(list(STATUS_COLOURS.values())), vmin=-0.5, vmax=2.5, aspect="auto")
    ax.set_xticks(range(len(names)), names, fontsize=8)
    ax.set_yticks(range(len(keys)), [SHORT_CHECKS.get(key, key) for key in keys], fontsize=8)
    ax.tick_params(length=0)
    for column, name in enumerate(names):
        for row, key in enumerate(keys):
            ax.text(column, row, cards[name].status(key), ha="center", va="center", fontsize=7,
                    color="white" if cards[name].status(key) != COULD_NOT_RUN else "black")
    held = {name: cards[name].count(HOLDS) for name in names}
    ax.set_title("Report cards: which invariants hold in each model (" +
                 ", ".join(f"{name}: {count}/{len(keys)}" for name, count in held.items()) + ")", fontsize=9)
    ax.legend(handles=[Patch(color=colour, label=status) for status, colour in STATUS_COLOURS.items()],
              loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7, frameon=False)
    return fig
