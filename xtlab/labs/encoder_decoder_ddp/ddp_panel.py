"""Lab 05: the DDP runs drawn (how far each rank got, and how it ended) and a panel that launches one run on 2 real
processes at the press of a button."""

from __future__ import annotations

import html

import ipywidgets as widgets
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from xtlab.labs.encoder_decoder_ddp.launch import ScenarioReport, ScenarioRuns, run_scenarios
from xtlab.labs.encoder_decoder_ddp.notebook_runs import (
    LAYER_DROPOUT_DEPTH,
    ONE_RANK_SKIPS_NOTHING,
    SAME_SKIPS,
    SKIPS_DIFFER,
)
from xtlab.labs.encoder_decoder_ddp.scenarios import DDPScenario
from xtlab.widgets.figures import new_figure
from xtlab.widgets.panel import LabPanel

# Okabe-Ito: colour-blind safe
STATUS_COLORS = {"trained": "#0072B2", "error": "#D55E00", "hung": "#E69F00", "stopped": "#999999",
                 "died": "#000000"}
STATUS_LABELS = {"trained": "trained every step", "error": "raised an error", "hung": "blocked until the timeout",
                 "stopped": "stopped by the launch", "died": "process died"}


def plot_runs(runs: ScenarioRuns | ScenarioReport | None) -> Figure:
    """One bar per (run, rank): the steps it finished, coloured by how it ended; a prompt before any launch."""
    reports = [runs] if isinstance(runs, ScenarioReport) else list(runs or [])
    fig = new_figure(8, 0.9 + 0.42 * max(1, sum(len(r.ranks) for r in reports)))
    ax = fig.add_subplot()
    if not reports:
        ax.text(0.5, 0.5, "Press 'Launch DDP' to start 2 processes", ha="center", va="center")
        ax.set_axis_off()
        return fig
    labels, row = [], 0
    for report in reports:
        for rank in report.ranks:
            done = report.outcomes[rank.rank].steps_done if report.outcomes[rank.rank] is not None else 0
            # a rank that did not train also gets half a step: the step in which it ended
            width = done if rank.status == "trained" else done + 0.5
            ax.barh(row, width, color=STATUS_COLORS[rank.status])
            end = "" if rank.status == "trained" else f" {rank.status} in step {rank.step}" if rank.step else \
                f" {rank.status}"
            ax.text(width, row, end, va="center", fontsize=8)
            labels.append(f"{report.number}. {report.name}, rank {rank.rank}")
            row += 1
    steps = max(report.scenario.steps for report in reports)
    ax.set_yticks(range(row), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, steps + 1.6)
    ax.set(xlabel="training steps finished (half a step more: the step in which the rank ended)",
           title="How far each rank got, and how it ended")
    present = sorted({rank.status for report in reports for rank in report.ranks}, key=list(STATUS_COLORS).index)
    fig.legend(handles=[Patch(color=STATUS_COLORS[s], label=STATUS_LABELS[s]) for s in present], fontsize=8,
               loc="outside lower center", ncols=len(present))
    return fig


MODELS = {
    "encoder keeps to_logits (the bug)": {"encoder_keeps_logits": True},
    "encoder fixed": {},
    "layer dropout, ranks skip different blocks": {"depth": LAYER_DROPOUT_DEPTH, "skips": SKIPS_DIFFER},
    "layer dropout, rank 0 skips nothing at step 1": {"depth": LAYER_DROPOUT_DEPTH, "skips": ONE_RANK_SKIPS_NOTHING},
    "layer dropout, same skips on every rank": {"depth": LAYER_DROPOUT_DEPTH, "skips": SAME_SKIPS},
}


def panel_scenario(model: str, find_unused_parameters: bool, static_graph: bool, debug: str) -> DDPScenario:
    """The run the panel launches for these control values."""
    if model not in MODELS:
        raise ValueError(f"model must be one of {list(MODELS)}, but got {model!r}")
    return DDPScenario("your_run", find_unused_parameters=find_unused_parameters, static_graph=static_graph,
                       debug=debug, **MODELS[model])


def _summary(report: ScenarioReport | None) -> str:
    if report is None:
        return "Nothing launched yet."
    lines = report.lines() + ([f"  parameters without gradient: {', '.join(report.unused)}"] if report.unused else [])
    return "<br>".join(html.escape(line) for line in lines)


def ddp_panel(first: ScenarioReport | None = None) -> LabPanel:
    """Choose the model and DDP's settings, then press the button: one run on 2 real processes (seconds).

    The button is ``panel.launch_button``; nothing runs until it is pressed (``auto_refresh=False``).

    Args:
        first: a run made at the panel's default controls (the bug, DDP's defaults, debug OFF), drawn before the
            first launch, so the stored notebook shows a real run instead of an empty frame.
    """
    if first is not None and first.scenario.settings != panel_scenario(list(MODELS)[0], False, False, "OFF").settings:
        raise ValueError(f"first must be a run at the panel's default settings, but ran {first.scenario.settings}")
    launched = {"count": 0}
    controls = {
        "model": widgets.Dropdown(options=list(MODELS), value=list(MODELS)[0], description="model",
                                  layout=widgets.Layout(width="max-content")),
        "find_unused_parameters": widgets.Checkbox(value=False, description="find_unused_parameters"),
        "static_graph": widgets.Checkbox(value=False, description="static_graph"),
        "debug": widgets.Dropdown(options=["OFF", "INFO", "DETAIL"], value="OFF", description="DEBUG"),
    }

    def compute(model: str, find_unused_parameters: bool, static_graph: bool, debug: str):
        if launched["count"] == 0:
            return first
        return run_scenarios(panel_scenario(model, find_unused_parameters, static_graph, debug))["your_run"]

    button = widgets.Button(description="Launch DDP (2 processes)", button_style="warning")
    panel = LabPanel(controls, compute=compute, plot=plot_runs, summarize=_summary,
                     title="Real DDP on 2 processes (gloo, CPU)", auto_refresh=False, extra_children=(button,),
                     cache_size=0)  # a launch depends on the button, not only on the controls

    def on_click(_button) -> None:
        launched["count"] += 1
        label = button.description
        button.disabled, button.description = True, "Running on 2 processes..."
        try:
            panel.refresh()
        finally:
            button.disabled, button.description = False, label

    button.on_click(on_click)
    panel.launch_button = button
    return panel
