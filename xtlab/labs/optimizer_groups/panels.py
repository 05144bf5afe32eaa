"""Lab 04 plots and panels: the parameter-groups table, decay on memory tokens and gains, unit-offset gains."""

from __future__ import annotations

import html

import ipywidgets as widgets
import numpy as np
from matplotlib.figure import Figure

from xtlab.diagnostics.optimizer_groups import EXEMPT_CATEGORIES, STRATEGIES
from xtlab.labs.optimizer_groups.groups import GroupTable, group_table
from xtlab.labs.optimizer_groups.training import (
    MEMORY_TOKENS,
    NORM_GAIN,
    GainTrace,
    NormTrace,
    gains_under_strong_decay,
    norms_under_groupings,
)
from xtlab.widgets.figures import new_figure
from xtlab.widgets.panel import LabPanel

CATEGORY_COLORS = {"matrix weight": "#4c72b0", "embedding": "#dd8452", "memory tokens": "#55a868",
                   "memory key/values": "#c44e52", "norm gain": "#8172b3", "bias": "#937860", "other": "#999999"}


def plot_group_numel(table: GroupTable) -> Figure:
    """One horizontal bar per group, split by category, as long as the number of elements it holds."""
    fig = new_figure(7, 2.6)
    ax = fig.add_subplot()
    groups = [total.group for total in table.totals]
    for y, group in enumerate(groups):
        left = 0
        for category, color in CATEGORY_COLORS.items():
            numel = sum(row.numel for row in table.rows if row.group == group and row.category == category)
            if numel:
                ax.barh(y, numel, left=left, color=color, label=category)
                left += numel
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))
    ax.legend(unique.values(), unique.keys(), fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    ax.set_yticks(range(len(groups)), [f"{g}\n(wd {table.decay_of(g):g})" for g in groups])
    ax.set(xlabel="elements (numel)", title=f"parameters per group, strategy {table.strategy!r}")
    return fig


def group_table_html(table: GroupTable) -> str:
    """Totals per group, then one row per parameter (name, shape, numel, group, reason) as an HTML table."""
    totals = "".join(f"<li><b>{t.group}</b> (weight decay {table.decay_of(t.group):g}): {t.count} parameters, "
                     f"{t.numel} elements</li>" for t in table.totals)
    head = "".join(f"<th style='text-align:left'>{h}</th>" for h in ("name", "shape", "numel", "group", "reason"))
    body = "".join(
        f"<tr style='background:{'#eef5ee' if row.group == 'no_decay' else '#ffffff'}'>"
        f"<td><code>{html.escape(row.name)}</code></td><td>{row.shape}</td><td>{row.numel}</td>"
        f"<td>{row.group}</td><td>{html.escape(row.reason)}</td></tr>"
        for row in table.rows)
    return f"<ul>{totals}</ul><table style='font-size:85%'><tr>{head}</tr>{body}</table>"


def _group_table_from_controls(strategy: str, exempt: tuple[str, ...], weight_decay: float) -> GroupTable:
    return group_table(strategy, exempt, weight_decay)


def group_table_panel() -> LabPanel:
    """Strategy, exempt categories and weight decay -> the table of every parameter and the numel per group."""
    controls = {
        "strategy": widgets.ToggleButtons(options=list(STRATEGIES), value="by_type", description="strategy"),
        "exempt": widgets.SelectMultiple(options=list(EXEMPT_CATEGORIES), value=tuple(EXEMPT_CATEGORIES),
                                         rows=len(EXEMPT_CATEGORIES), description="no decay for"),
        "weight_decay": widgets.FloatSlider(value=0.1, min=0.0, max=1.0, step=0.05, description="weight decay"),
    }
    return LabPanel(controls, compute=_group_table_from_controls, plot=plot_group_numel,
                    summarize=group_table_html,
                    title="Every parameter of the specimen, its group and why ('exempt' applies to by_type)")


GROUPING_STYLES = {"by type": "-", "by ndim": "--", "decay everything": ":"}


def plot_norm_traces(trace: NormTrace) -> Figure:
    """Per-step L2 norm of the memory tokens (left) and of a norm gain (right), one line per grouping."""
    fig = new_figure(8, 3.2)
    axes = fig.subplots(1, 2)
    panels = ((axes[0], MEMORY_TOKENS, "memory tokens"), (axes[1], NORM_GAIN, "RMSNorm gain (final norm)"))
    for ax, name, title in panels:
        for grouping, values in trace.norms.items():
            ax.plot(trace.steps, values[name], GROUPING_STYLES.get(grouping, "-"), label=grouping)
        ax.set(xlabel="optimizer step", ylabel="L2 norm", title=title, ylim=(0, None))
    axes[0].legend(fontsize=8)
    fig.suptitle(f"AdamW, lr {trace.lr:g}, weight decay {trace.weight_decay:g}")
    return fig


def norm_trace_summary(trace: NormTrace) -> str:
    """Final / initial norm per grouping, as an HTML list."""
    items = "".join(f"<li>{html.escape(g)}: memory tokens x{trace.ratio(g, MEMORY_TOKENS):.2f}, "
                    f"norm gain x{trace.ratio(g, NORM_GAIN):.2f}</li>" for g in trace.norms)
    return f"Final norm / initial norm after {len(trace.steps) - 1} steps:<ul>{items}</ul>"


DECAY_CHOICES = (0.0, 0.1, 0.3, 1.0, 2.0)


def decay_panel() -> LabPanel:
    """Weight decay -> train briefly under each grouping, plot the norms per step (cached per setting)."""
    controls = {"weight_decay": widgets.SelectionSlider(options=list(DECAY_CHOICES), value=1.0,
                                                        description="weight decay")}
    return LabPanel(controls, compute=lambda weight_decay: norms_under_groupings(weight_decay=weight_decay),
                    plot=plot_norm_traces, summarize=norm_trace_summary,
                    title="What decay does to memory tokens and a norm gain (trains on change: ~1-2 s)")


def plot_gain_traces(trace: GainTrace) -> Figure:
    """Mean effective norm gain per step with and without unit offset, with the identity (1) and zero marked."""
    fig = new_figure(7, 3.2)
    ax = fig.add_subplot()
    for label, values in trace.gains.items():
        ax.plot(trace.steps, values, label=label)
    ax.axhline(1.0, color="#888", lw=0.8, ls="--")
    ax.axhline(0.0, color="#888", lw=0.8, ls=":")
    ax.set(xlabel="optimizer step", ylabel="mean effective gain", ylim=(-0.05, max(1.3, float(np.max(
        [v.max() for v in trace.gains.values()])) + 0.05)),
        title=f"every parameter decayed: weight decay {trace.weight_decay:g}, lr {trace.lr:g}")
    ax.legend(fontsize=8)
    return fig


def gain_trace_summary(trace: GainTrace) -> str:
    """Final mean effective gain and final loss of each variant, as an HTML list."""
    items = "".join(f"<li>{html.escape(label)}: gain {values[-1]:.2f}, last loss {trace.losses[label][-1]:.2f}</li>"
                    for label, values in trace.gains.items())
    return f"After {len(trace.steps) - 1} steps:<ul>{items}</ul>"


STRONG_DECAY_CHOICES = (0.0, 1.0, 2.0, 5.0, 10.0)


def unit_offset_panel() -> LabPanel:
    """Weight decay -> the effective norm gain per step with and without ``norm_unit_offset`` (cached per setting)."""
    controls = {"weight_decay": widgets.SelectionSlider(options=list(STRONG_DECAY_CHOICES), value=5.0,
                                                        description="weight decay")}
    return LabPanel(controls, compute=lambda weight_decay: gains_under_strong_decay(weight_decay=weight_decay),
                    plot=plot_gain_traces, summarize=gain_trace_summary,
                    title="Decay pulls the stored gain to 0: towards zero scaling, or towards identity")
