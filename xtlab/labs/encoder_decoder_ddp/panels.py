"""Lab 05 plots and panels: seq2seq training, the encoder's unused ``to_logits`` and what it wastes, and a
button that launches real DDP."""

from __future__ import annotations

import html
import textwrap

import ipywidgets as widgets
from matplotlib.figure import Figure

from xtlab.labs.encoder_decoder_ddp.ddp_training import DDPTrainConfig
from xtlab.labs.encoder_decoder_ddp.experiments import Seq2SeqRun, WasteReport, wasted_by_encoder_logits
from xtlab.labs.encoder_decoder_ddp.launch import DDPRunReport, launch_ddp
from xtlab.widgets.figures import new_figure
from xtlab.widgets.panel import LabPanel

UNUSED_COLOR, USED_COLOR = "#c0392b", "#4c72b0"
CURVE_VOCABS = (1000, 2000, 4000, 8000, 16000, 32000, 64000, 128000)


def plot_seq2seq_run(run: Seq2SeqRun) -> Figure:
    """Training loss per step, and held-out exact-match accuracy before and after training."""
    fig = new_figure(8, 3)
    loss_ax, acc_ax = fig.subplots(1, 2, width_ratios=(2, 1))
    loss_ax.plot(run.losses)
    loss_ax.set(xlabel="step", ylabel="training loss", yscale="log", title=f"{run.task}: training loss")
    acc_ax.bar(["before", "after"], [run.accuracy_before, run.accuracy_after], color=["#999", USED_COLOR])
    acc_ax.set(ylim=(0, 1.05), ylabel="rows exactly right", title=f"held-out accuracy ({run.held_out} rows)")
    return fig


def plot_waste(report: WasteReport, curve: list[tuple[int, int]] | None = None) -> Figure:
    """Parameters per component (unused ones red) and, when given, wasted MB against vocabulary size."""
    fig = new_figure(9, 3.5)
    bars_ax, curve_ax = fig.subplots(1, 2)
    names = [name for name, _, _ in report.components]
    counts = [count for _, count, _ in report.components]
    colors = [UNUSED_COLOR if unused else USED_COLOR for _, _, unused in report.components]
    bars_ax.barh(names, counts, color=colors)
    bars_ax.invert_yaxis()
    bars_ax.set(xscale="log", xlabel="parameters (log scale)",
                title=f"vocab {report.vocab_size}, dim {report.dim}: red = no gradient")
    bars_ax.tick_params(axis="y", labelsize=8)
    if curve:
        vocabs, wasted = zip(*curve, strict=True)
        curve_ax.plot(vocabs, [b / 2**20 for b in wasted], marker="o", color=UNUSED_COLOR)
        curve_ax.plot([report.vocab_size], [report.wasted_bytes / 2**20], marker="*", markersize=14, color="k")
    curve_ax.set(xscale="log", xlabel="vocabulary size", ylabel=f"wasted MiB ({report.dtype})",
                 title=f"encoder to_logits at dim {report.dim}")
    return fig


def waste_curve(dim: int, dtype: str, encoder_keeps_logits: bool) -> list[tuple[int, int]]:
    """(vocab, wasted bytes) over ``CURVE_VOCABS``, each from a real (meta) model."""
    return [(v, wasted_by_encoder_logits(v, dim, dtype, encoder_keeps_logits=encoder_keeps_logits).wasted_bytes)
            for v in CURVE_VOCABS]


def _waste_compute(encoder_keeps_logits: bool, vocab_size: int, dim: int, dtype: str):
    report = wasted_by_encoder_logits(vocab_size, dim, dtype, encoder_keeps_logits=encoder_keeps_logits)
    return report, waste_curve(dim, dtype, encoder_keeps_logits)


def _waste_summary(result) -> str:
    report, _ = result
    if not report.unused_names:
        return "The unused-parameter finder names <b>no</b> parameter: every weight takes part in the loss."
    return (f"The finder names <code>{html.escape(', '.join(report.unused_names))}</code>: "
            f"{report.wasted_params:,} parameters, {report.wasted_bytes / 2**20:.1f} MiB in {report.dtype}, "
            f"{report.wasted_fraction:.1%} of the model's {report.total_params:,} parameters.")


def waste_panel() -> LabPanel:
    """Toggle the bug, move vocabulary size and width: the finder's verdict and the wasted bytes re-draw."""
    controls = {
        "encoder_keeps_logits": widgets.Checkbox(value=True, description="encoder keeps its to_logits (bug)"),
        "vocab_size": widgets.IntSlider(value=32000, min=1000, max=128000, step=1000, description="vocab"),
        "dim": widgets.IntSlider(value=512, min=64, max=2048, step=64, description="width"),
        "dtype": widgets.Dropdown(options=["float32", "bfloat16"], value="float32", description="dtype"),
    }
    return LabPanel(controls, compute=_waste_compute, plot=lambda result: plot_waste(*result),
                    summarize=_waste_summary, title="What does the unused encoder to_logits cost?")


def plot_ddp_report(report: DDPRunReport | None) -> Figure:
    """Rank 0's loss per step when every rank trained; the error text when one failed; a prompt before a launch."""
    fig = new_figure(7, 3)
    ax = fig.add_subplot()
    if report is None:
        ax.text(0.5, 0.5, "Press 'Launch DDP' to start 2 processes", ha="center", va="center")
        ax.set_axis_off()
    elif not report.ok:
        ax.text(0.02, 0.95, "\n".join(_wrap(line) for line in report.lines()), ha="left", va="top",
                color=UNUSED_COLOR, fontsize=8, family="monospace")
        ax.set_axis_off()
        ax.set_title(f"{report.name}: DDP failed")
    else:
        ax.plot(report.losses, marker="o")
        ax.set(xlabel="step", ylabel="loss on rank 0",
               title=f"{report.name}: ranks agree on parameters: {report.ranks_agree}")
    return fig


def _wrap(line: str, width: int = 90) -> str:
    return textwrap.fill(line, width, subsequent_indent="    ", break_long_words=True)


def _ddp_summary(report: DDPRunReport | None) -> str:
    if report is None:
        return "Nothing launched yet."
    return "<br>".join(html.escape(line) for line in report.lines())


def ddp_panel(steps: int = 3, timeout_s: float = 60.0) -> LabPanel:
    """Choose bug / ``find_unused_parameters`` / layer dropout, then press the button: real DDP on 2 processes.

    The button is ``panel.launch_button``; nothing runs until it is pressed (``auto_refresh=False``).
    """
    launched = {"count": 0}
    controls = {
        "encoder_keeps_logits": widgets.Checkbox(value=True, description="encoder keeps its to_logits (bug)"),
        "find_unused_parameters": widgets.Checkbox(value=False, description="find_unused_parameters"),
        "dec_layer_dropout": widgets.FloatSlider(value=0.0, min=0.0, max=0.5, step=0.05, description="layer drop"),
    }

    def compute(encoder_keeps_logits: bool, find_unused_parameters: bool, dec_layer_dropout: float):
        if launched["count"] == 0:
            return None
        config = DDPTrainConfig(name="your run", encoder_keeps_logits=encoder_keeps_logits,
                                find_unused_parameters=find_unused_parameters,
                                dec_layer_dropout=round(dec_layer_dropout, 2), steps=steps)
        return launch_ddp(config, timeout_s=timeout_s)

    button = widgets.Button(description="Launch DDP (2 processes)", button_style="warning")
    panel = LabPanel(controls, compute=compute, plot=plot_ddp_report, summarize=_ddp_summary,
                     title="Real DDP: gloo on CPU, NCCL when every rank has a GPU", auto_refresh=False,
                     extra_children=(button,))

    def on_click(_button) -> None:
        launched["count"] += 1
        label = button.description
        button.disabled, button.description = True, "Running on 2 processes..."  # a launch takes seconds
        try:
            panel.refresh()
        finally:
            button.disabled, button.description = False, label

    button.on_click(on_click)
    panel.launch_button = button
    return panel
