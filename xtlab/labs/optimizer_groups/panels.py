"""Lab 04 figures and panels: the recipe's misplacements, a grouping per parameter, AdamW step times, and a gain
under weight decay."""

from __future__ import annotations

import html

import ipywidgets as widgets
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from xtlab.labs.optimizer_groups.decay import STORAGES, GainDecay, gain_decay_closed_form
from xtlab.labs.optimizer_groups.grouping_view import GROUPINGS, GroupingView, grouping_view
from xtlab.labs.optimizer_groups.models import MODELS
from xtlab.labs.optimizer_groups.recipe import RecipeRun
from xtlab.labs.optimizer_groups.timing import IMPLEMENTATIONS, AdamWTiming
from xtlab.widgets.figures import new_figure
from xtlab.widgets.panel import LabPanel

# Okabe-Ito, colour-blind safe
BLUE, ORANGE, VERMILION, GREEN, GREY = "#0072B2", "#E69F00", "#D55E00", "#009E73", "#999999"
PROBLEM_COLORS = {"wrong group": ORANGE, "two groups": VERMILION, "no group": GREY}
IMPLEMENTATION_COLORS = {"for-loop": GREY, "foreach": BLUE, "fused": GREEN}


def plot_recipe_runs(runs: list[RecipeRun]) -> Figure:
    """Per model, how many parameters the recipe put in the wrong group, in two groups or in none."""
    fig = new_figure(7.5, 0.6 + 0.55 * len(runs))
    ax = fig.add_subplot()
    labels = [f"{run.model_name}\n(assertion {'passes' if run.assertion_holds else 'FIRES'})" for run in runs]
    for problem, color in PROBLEM_COLORS.items():
        lefts = [sum(run.count(p) for p in list(PROBLEM_COLORS)[:list(PROBLEM_COLORS).index(problem)])
                 for run in runs]
        ax.barh(labels, [run.count(problem) for run in runs], left=lefts, color=color, label=problem)
    ax.invert_yaxis()
    ax.set_xlim(0, max(1, max(len(run.problems) for run in runs)) + 0.5)
    ax.set(xlabel="parameters (tensors) misplaced",
           title=f"The article's recipe on {len(runs)} models: misplaced by the lab's rule")
    ax.legend(fontsize=8, loc="lower right")
    return fig


def recipe_table_html(runs: list[RecipeRun]) -> str:
    """One table row per misplaced parameter (model, name, shape, problem, groups, expected, rule, effect)."""
    head = "".join(f"<th style='text-align:left'>{h}</th>" for h in
                   ("model", "parameter", "shape", "problem", "recipe put it in", "belongs in", "recipe's rule",
                    "what decay does"))
    body = "".join(
        f"<tr><td>{html.escape(run.model_name)}</td><td><code>{html.escape(p.name)}</code></td><td>{p.shape}</td>"
        f"<td>{p.problem}</td><td>{', '.join(p.placed) or '-'}</td><td>{html.escape(p.expected)}</td>"
        f"<td>{html.escape(p.rule)}</td><td>{html.escape(p.effect)}</td></tr>"
        for run in runs for p in run.problems)
    return f"<table style='font-size:85%'><tr>{head}</tr>{body}</table>"


def plot_grouping_view(view: GroupingView) -> Figure:
    """Elements per parameter category, coloured by the group the grouping gave them (vermillion: misplaced)."""
    fig = new_figure(7.5, 3.0)
    ax = fig.add_subplot()
    categories = sorted({row.category for row in view.rows})
    for y, category in enumerate(categories):
        rows = [row for row in view.rows if row.category == category]
        left = 0
        for row in rows:
            color = VERMILION if not row.right else (BLUE if row.expected == "decay" else ORANGE)
            ax.barh(y, row.numel, left=left, color=color, edgecolor="white", linewidth=0.5)
            left += row.numel
    expected = {c: next(r.expected for r in view.rows if r.category == c) for c in categories}
    ax.set_yticks(range(len(categories)), [f"{c} (belongs: {expected[c]})" for c in categories], fontsize=8)
    ax.invert_yaxis()
    handles = [Patch(color=BLUE, label="decay (right)"), Patch(color=ORANGE, label="no_decay (right)"),
               Patch(color=VERMILION, label="misplaced")]
    ax.legend(handles=handles, fontsize=8, loc="lower right")
    ax.set(xlabel="elements (numel)", xlim=(0, None),
           title=f"{view.model_name} under {view.grouping!r}: {len(view.wrong)} of {len(view.rows)} misplaced")
    return fig


def grouping_view_html(view: GroupingView) -> str:
    """The misplaced parameters first, then the count of the rest."""
    rows = "".join(f"<li><code>{html.escape(r.name)}</code> {r.shape}: put in {', '.join(r.placed) or 'no group'}, "
                   f"belongs in {r.expected}</li>" for r in view.wrong)
    return (f"{len(view.wrong)} misplaced of {len(view.rows)} trainable parameters"
            + (f":<ul>{rows}</ul>" if rows else "."))


def grouping_panel() -> LabPanel:
    """Model and grouping -> every parameter's group against where it belongs."""
    controls = {"model_name": widgets.Dropdown(options=list(MODELS), value="xtlab decoder", description="model"),
                "grouping": widgets.ToggleButtons(options=list(GROUPINGS), value="article recipe",
                                                  description="grouping")}
    return LabPanel(controls, compute=grouping_view, plot=plot_grouping_view, summarize=grouping_view_html,
                    title="Which group each parameter lands in, and where it belongs")


def plot_step_times(timings: dict[str, AdamWTiming]) -> Figure:
    """One panel per model size: median AdamW step time per implementation (bars from zero)."""
    fig = new_figure(3.3 * len(timings), 3.0)
    axes = fig.subplots(1, len(timings), squeeze=False)[0]
    for ax, (label, timing) in zip(axes, timings.items(), strict=True):
        names = [n for n in IMPLEMENTATIONS if n in timing.seconds]
        ax.bar(names, [timing.median(n) * 1e3 for n in names], color=[IMPLEMENTATION_COLORS[n] for n in names])
        ax.set(ylabel="median step time (ms)", ylim=(0, None),
               title=f"{label}\n{timing.elements:,} elements, {timing.device}")
    fig.suptitle("AdamW step time per implementation: the shortest bar is the fastest")
    return fig


def plot_gain_decay(decay: GainDecay) -> Figure:
    """The effective gain per step under weight decay alone, stored directly vs as an offset from 1."""
    fig = new_figure(7, 3.0)
    ax = fig.add_subplot()
    for (storage, values), color in zip(decay.gains.items(), (VERMILION, BLUE), strict=True):
        ax.plot(decay.steps, values, color=color, label=f"gain {storage}")
    ax.axhline(1.0, color=GREY, lw=0.8, ls="--")
    ax.set(xlabel="optimizer step (gradient 0)", ylabel="effective gain", ylim=(0, max(1.1, decay.start_gain * 1.05)),
           title=f"Decay alone (lr {decay.lr:g}, weight decay {decay.weight_decay:g}): where each gain ends")
    ax.legend(fontsize=8)
    return fig


def gain_decay_summary(decay: GainDecay) -> str:
    items = "".join(f"<li>gain {s}: {decay.start_gain:g} -> {decay.final(s):.3f}</li>" for s in STORAGES)
    return f"After {int(decay.steps[-1])} steps ({decay.source}):<ul>{items}</ul>"


def decay_panel() -> LabPanel:
    """Start gain, lr, weight decay and steps -> the effective gain per step for both storages (closed form)."""
    controls = {
        "start_gain": widgets.FloatSlider(value=1.5, min=0.0, max=2.0, step=0.1, description="start gain"),
        "lr": widgets.SelectionSlider(options=[1e-4, 3e-4, 1e-3, 3e-3, 1e-2], value=1e-2, description="lr"),
        "weight_decay": widgets.SelectionSlider(options=[0.0, 0.01, 0.05, 0.1, 0.3, 1.0], value=0.3,
                                                description="weight decay"),
        "steps": widgets.SelectionSlider(options=[100, 1000, 10_000, 100_000], value=1000, description="steps"),
    }
    return LabPanel(controls, compute=gain_decay_closed_form, plot=plot_gain_decay, summarize=gain_decay_summary,
                    title="Weight decay with no gradient: a gain stored directly vs as an offset from 1")


def show_recipe_runs(runs: list[RecipeRun]) -> Figure:
    """Print the recipe's outcome on each model (listings, assertion, misplaced, decayed gains, AdamW) and return
    the figure: what the notebook shows once the tie prediction is committed."""
    for run in runs:
        print(f"{run.model_name}: {run.listed} listed / {run.trainable} trainable, assertion holds: "
              f"{run.assertion_holds}; wrong group: {run.count('wrong group')}, two groups: "
              f"{run.count('two groups')}, no group: {run.count('no group')}; norm gains decayed: "
              f"{len(run.decayed_gains)}")
        print(f"   createOptimizer: {run.optimizer_outcome}")
        print(f"   AdamW(groups, fused=True) on its groups: {run.fused_outcome}")
    return plot_recipe_runs(runs)


def show_step_times(timings: dict[str, AdamWTiming]) -> Figure:
    """Print the median step times per implementation and size, and return the figure (device-specific)."""
    for label, timing in timings.items():
        steps = ", ".join(f"{name} {timing.median(name) * 1e3:.3f} ms" for name in timing.seconds)
        print(f"{label} ({timing.elements} elements, {timing.device}): {steps}; fastest: {timing.fastest}; "
              f"fused is {timing.speedup('fused', 'for-loop'):.1f}x the for-loop, "
              f"{timing.speedup('fused', 'foreach'):.1f}x foreach")
    return plot_step_times(timings)


def show_gain_decay(decay: GainDecay, closed: GainDecay, untouched: GainDecay) -> Figure:
    """Print where each gain ends (measured and closed form) and what a None grad does, and return the figure."""
    steps = int(decay.steps[-1])
    for storage in STORAGES:
        print(f"gain {storage}: {decay.start_gain:g} -> {decay.final(storage):.3f} after {steps} AdamW steps "
              f"(closed form: {closed.final(storage):.3f})")
    follows = all(float(abs(decay.gains[s] - closed.gains[s]).max()) < 1e-4 for s in STORAGES)
    print("torch AdamW follows the closed form to 1e-4 at every step:", follows)
    print(f"with .grad None, AdamW skips the parameter: the gain stays {untouched.final(STORAGES[0]):.3f}")
    return plot_gain_decay(decay)
