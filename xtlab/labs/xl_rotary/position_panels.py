"""Lab 03 plots and panels, items 1-2: where memory keys sit, and what rotary scores they get."""

from __future__ import annotations

import ipywidgets as widgets
import numpy as np
from matplotlib.figure import Figure

from xtlab.labs.xl_rotary.positions import KeyPositions, RotaryScores, key_positions, rotary_scores
from xtlab.widgets.figures import new_figure
from xtlab.widgets.panel import LabPanel

MEMORY_COLOR, CURRENT_COLOR = "tab:orange", "tab:blue"


def plot_key_positions(positions: KeyPositions) -> Figure:
    """Two rows of keys, oldest on the left: the position each key gets, continuous vs restarted."""
    fig = new_figure(7, 3.2)
    axes = fig.subplots(2, 1, sharex=True)
    index = np.arange(positions.num_mems + positions.seq_len)
    colors = np.where(positions.is_memory, MEMORY_COLOR, CURRENT_COLOR)
    rows = (("continuous", "continuous: arange(-M, T) (the fix)"), ("restart", "restarted: [0..M-1, 0..T-1] (the bug)"))
    for ax, (mode, title) in zip(axes, rows, strict=True):
        values = getattr(positions, mode)
        ax.scatter(index, values, c=colors, s=40, zorder=3)
        for i, v in zip(index, values, strict=True):
            ax.annotate(str(int(v)), (i, v), textcoords="offset points", xytext=(0, 5), ha="center", fontsize=8)
        ax.axvline(positions.num_mems - 0.5, color="gray", linestyle=":")
        ax.set(title=title, ylabel="position")
        ax.margins(y=0.35)
    axes[-1].set_xlabel(f"key index (orange: {positions.num_mems} memory keys, blue: {positions.seq_len} current keys)")
    return fig


def summarize_key_positions(positions: KeyPositions) -> str:
    flags = positions.strictly_increasing
    return (f"M={positions.num_mems}, T={positions.seq_len}: continuous positions "
            f"<code>{positions.continuous_list}</code>; keys in time order: continuous {flags['continuous']}, "
            f"restarted {flags['restart']}.")


def key_positions_panel() -> LabPanel:
    """Sliders for M and T; the positions of memory and current keys re-draw."""
    controls = {
        "num_mems": widgets.IntSlider(value=2, min=0, max=8, description="M (memory)"),
        "seq_len": widgets.IntSlider(value=4, min=1, max=12, description="T (segment)"),
    }
    return LabPanel(controls, compute=key_positions, plot=plot_key_positions, summarize=summarize_key_positions,
                    title="Positions of memory keys and current keys")


def compare_rotary_scores(num_mems: int, seq_len: int, dim_head: int = 32) -> tuple[RotaryScores, RotaryScores]:
    """Rotary scores of every causal pair with continuous and with restarted memory positions."""
    return (rotary_scores(num_mems, seq_len, "continuous", dim_head),
            rotary_scores(num_mems, seq_len, "restart", dim_head))


def plot_rotary_scores(pair: tuple[RotaryScores, RotaryScores]) -> Figure:
    """Score against true distance i - j: the line is f(distance); dots are the pairs, orange for memory keys."""
    fig = new_figure(8, 3.3)
    axes = fig.subplots(1, 2, sharey=True)
    for ax, result in zip(axes, pair, strict=True):
        ax.plot(result.curve_distance, result.curve_score, color="gray", linewidth=1, label="f(true distance)")
        mem = result.is_memory
        ax.scatter(result.true_distance[~mem], result.score[~mem], s=16, color=CURRENT_COLOR, label="current key")
        ax.scatter(result.true_distance[mem], result.score[mem], s=22, marker="x", color=MEMORY_COLOR,
                   label="memory key")
        ax.set(title=f"{result.mode} positions", xlabel="true distance i - j")
    axes[0].set_ylabel("rotary score q_i . k_j")
    axes[0].legend(fontsize=7, loc="lower left")
    return fig


def summarize_rotary_scores(pair: tuple[RotaryScores, RotaryScores]) -> str:
    cont, restart = pair
    return (f"Largest distance from the curve: continuous {cont.max_error:.1e}, restarted {restart.max_error:.2g}. "
            f"Restarted: {restart.memory_pairs_misplaced} (query, memory) pairs at the wrong distance, "
            f"{restart.memory_keys_seen_in_future} of them placed in the future.")


def rotary_scores_panel() -> LabPanel:
    """Sliders for M, T and the head size; both score plots re-draw."""
    controls = {
        "num_mems": widgets.IntSlider(value=4, min=0, max=12, description="M (memory)"),
        "seq_len": widgets.IntSlider(value=8, min=1, max=16, description="T (segment)"),
        "dim_head": widgets.Dropdown(options=[8, 16, 32, 64], value=32, description="dim_head"),
    }
    return LabPanel(controls, compute=compare_rotary_scores, plot=plot_rotary_scores,
                    summarize=summarize_rotary_scores, title="Rotary score against true distance")
