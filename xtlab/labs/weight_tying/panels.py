"""Lab 02 plots and panels: pick a tying style and a path, see the verdict and what training then does."""

from __future__ import annotations

import functools
import html

import ipywidgets as widgets
import numpy as np
from matplotlib.figure import Figure

from xtlab.diagnostics import inspect_ties
from xtlab.labs.weight_tying.fsdp_runs import FSDPReport
from xtlab.labs.weight_tying.models import STYLES
from xtlab.labs.weight_tying.paths import PATHS, PathOutcome, run_path
from xtlab.labs.weight_tying.training import (
    DriftResult,
    UpdateComparison,
    compare_half_tied_updates,
    drift_after_path,
)
from xtlab.widgets.figures import CourseFigure, new_figure, reuse_figure
from xtlab.widgets.panel import LabPanel

BLUE, ORANGE, VERMILLION, GREEN = "#0072B2", "#E69F00", "#D55E00", "#009E73"  # Okabe-Ito: colour-blind safe


def _build_drift(steps: int | None) -> CourseFigure:
    fig = new_figure(7, 3)
    left, right = fig.subplots(1, 2)
    if steps is None:  # the path raised
        for ax in (left, right):
            ax.text(0.5, 0.5, "the path raised:\nno model to train", ha="center", va="center")
            ax.set_axis_off()
        return fig
    left.plot([], [], marker="o")
    left.set(xlabel="AdamW step", ylabel="||embedding - output||", title="distance")
    right.bar(np.arange(1, steps + 1), np.zeros(steps))
    right.set(xlabel="AdamW step", ylabel="||change of embedding||", title="update size")
    return fig


def plot_drift(result: DriftResult, figure: Figure | None = None) -> Figure:
    """Left: ||embedding - output|| before each AdamW step; right: each step's change of the embedding.

    ``figure``: a figure this function drew before, to draw into (a panel's re-draw)."""
    failed = result.error is not None
    fig = reuse_figure(figure, _build_drift, None if failed else len(result.update_sizes))
    fig.suptitle(f"{STYLES[result.style]}, {PATHS[result.path][0]}: {result.verdict}")
    if failed:
        return fig
    left, right = fig.axes
    left.lines[0].set_data(np.arange(len(result.distances)), result.distances)
    for bar, size in zip(right.patches, result.update_sizes, strict=True):
        bar.set_height(size)
    for ax in (left, right):
        ax.relim()
        ax.autoscale_view()
    return fig


def _build_update_comparison(steps: int) -> CourseFigure:
    # fixed places (no layout pass per re-draw); tests/labs/test_weight_tying_panels.py checks them at the extremes
    fig = new_figure(7, 3, margins={"left": 0.1, "right": 0.98, "bottom": 0.16, "top": 0.9, "wspace": 0.3})
    left, right = fig.subplots(1, 2)
    left.plot([], [], marker="o", label="tied (one Parameter)")
    left.plot([], [], marker="s", label="half-tied (two Parameters)")
    left.set(xlabel="AdamW step", ylabel="||change of weight||", title="update size")
    left.legend()
    right.bar(np.arange(1, steps + 1), np.zeros(steps))
    right.axhline(1.0, color="gray", lw=1)
    right.set(xlabel="AdamW step", ylabel="half-tied / tied", title="ratio")
    for ax in (left, right):
        ax.set_xticks(np.arange(1, steps + 1))  # steps are whole numbers (at most 10 in the panel)
        ax.set_xlim(0.4, steps + 0.6)
    return fig


def plot_update_comparison(result: UpdateComparison, figure: Figure | None = None) -> Figure:
    """Per-step update size of the shared weight: tied vs half-tied, and their ratio.

    ``figure``: a figure this function drew before, to draw into (a panel's re-draw)."""
    fig = reuse_figure(figure, _build_update_comparison, len(result.tied_sizes))
    left, right = fig.axes
    steps = np.arange(1, len(result.tied_sizes) + 1)
    for line, sizes in zip(left.lines, (result.tied_sizes, result.half_tied_sizes), strict=True):
        line.set_data(steps, sizes)
    for bar, ratio in zip(right.patches, result.ratios, strict=True):
        bar.set_height(ratio)
    left.set_ylim(0, 1.15 * max(max(result.tied_sizes), max(result.half_tied_sizes)))  # sizes from zero
    right.set_ylim(0, 1.15 * max(1.0, max(result.ratios)))
    return fig


def plot_reload_gap(report: FSDPReport) -> Figure:
    """Left: validation loss under FSDP and after reloading without it, mean over seeds (bars from 0, one dot per
    seed). Right: reloaded minus in memory, one dot per seed and the mean."""
    fig = new_figure(7.5, 3.2)
    left, right = fig.subplots(1, 2)
    styles = [style for style in report.config.styles if report.rows_of(style)]
    positions = np.arange(len(styles))
    for offset, (label, field, colour) in zip((-0.2, 0.2), (("in memory, under FSDP", "val_in_memory", BLUE),
                                                             ("reloaded without FSDP", "val_reloaded", ORANGE)),
                                              strict=True):
        values = [[getattr(row, field) for row in report.rows_of(style)] for style in styles]
        left.bar(positions + offset, [np.mean(v) for v in values], width=0.4, color=colour, label=label)
        for position, seeds in zip(positions, values, strict=True):
            left.scatter(np.full(len(seeds), position + offset), seeds, color="black", s=12, zorder=3)
    left.set_xticks(positions, [STYLES[style] for style in styles])
    top = max(max(row.val_in_memory, row.val_reloaded) for row in report.reloads)
    left.set(ylabel="validation loss (nats/token)", ylim=(0, top * 1.35),
             title=f"validation loss, mean of {len(report.config.seeds)} seeds (dots: seeds)")
    left.legend(loc="upper center", ncol=2, fontsize=7)
    for position, style in zip(positions, styles, strict=True):
        gaps = report.reload_gaps(style)
        right.bar(position, gaps.mean(), width=0.5, color=VERMILLION if gaps.mean() > 0 else GREEN, alpha=0.6)
        right.scatter(np.full(len(gaps), position), gaps, color="black", s=14, zorder=3)
    right.axhline(0.0, color="gray", lw=1)
    right.margins(y=0.1)
    right.set_xticks(positions, [STYLES[style] for style in styles])
    right.set(ylabel="reloaded - in memory (nats/token)", title="change at reload, per seed (bar: mean)")
    return fig


def summarize_outcome(outcome: PathOutcome) -> str:
    """HTML: the verdict, the inspector's report, the state_dict keys, the parameter count and the pointers."""
    if outcome.error is not None:
        return f"<b>verdict: error</b><br><code>{html.escape(outcome.error)}</code>"
    report = inspect_ties(outcome.model)
    emb, out = outcome.pointers
    rows = [
        f"<b>verdict: {outcome.verdict}</b>",
        f"inspector: tied={report.tied}, half-tied={report.half_tied}",
        f"state_dict keys: {', '.join(outcome.state_dict_keys)}",
        f"len(list(model.parameters())) = {outcome.num_parameters}",
        f"storage pointers: embedding 0x{emb:x}, output 0x{out:x} ({'same' if emb == out else 'different'})",
    ]
    if outcome.facts:
        rows.append(f"facts: {html.escape(str(outcome.facts))}")
    return "<br>".join(rows)


@functools.lru_cache(maxsize=64)
def _path_and_drift(style: str, path: str, steps: int) -> tuple[PathOutcome, DriftResult]:
    return run_path(style, path), drift_after_path(style, path, steps=steps)


def paths_panel() -> LabPanel:
    """Dropdowns for the tying style and the path, a slider for AdamW steps; verdict and drift re-draw."""
    controls = {
        "style": widgets.Dropdown(options=[(label, key) for key, label in STYLES.items()], value="naive",
                                  description="style"),
        "path": widgets.Dropdown(options=[(label, key) for key, (label, _) in PATHS.items()], value="meta_to_empty",
                                 description="path"),
        "steps": widgets.IntSlider(value=5, min=1, max=10, description="AdamW steps"),
    }
    return LabPanel(controls, compute=_path_and_drift,
                    plot=lambda result, figure=None: plot_drift(result[1], figure=figure),
                    summarize=lambda result: summarize_outcome(result[0]),
                    title="Pick a tying style and a path")


def _comparison(weight_decay: float, steps: int) -> UpdateComparison:
    return compare_half_tied_updates(steps=steps, lr=1e-3, weight_decay=weight_decay)  # cached there


def summarize_comparison(result: UpdateComparison) -> str:
    decays = (f"one zero-gradient step applied weight decay {result.decays_tied:.2f} times (tied) and "
              f"{result.decays_half_tied:.2f} times (half-tied)" if result.weight_decay > 0 else "no weight decay")
    return f"mean update-size ratio half-tied / tied: <b>{result.mean_ratio:.2f}</b>; {decays}"


def updates_panel() -> LabPanel:
    """Sliders for weight decay and steps: a tied model's AdamW updates next to a half-tied one's."""
    controls = {
        "weight_decay": widgets.FloatSlider(value=0.1, min=0.0, max=0.5, step=0.05, description="weight decay"),
        "steps": widgets.IntSlider(value=5, min=1, max=10, description="AdamW steps"),
    }
    return LabPanel(controls, compute=_comparison, plot=plot_update_comparison,
                    summarize=summarize_comparison, title="Half-tied vs tied under AdamW")
