"""Lab 05 plots and panels: seq2seq training, and the encoder's unused ``to_logits`` with what it wastes."""

from __future__ import annotations

import html

import ipywidgets as widgets
from matplotlib.figure import Figure

from xtlab.labs.encoder_decoder_ddp.experiments import Seq2SeqRun, WasteReport, wasted_by_encoder_logits
from xtlab.widgets.figures import CourseFigure, new_figure, reuse_figure
from xtlab.widgets.panel import LabPanel

UNUSED_COLOR, USED_COLOR = "#D55E00", "#0072B2"  # Okabe-Ito vermillion and blue: colour-blind safe
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


def _build_waste(names: tuple[str, ...], with_curve: bool) -> CourseFigure:
    # fixed places (no layout pass per re-draw), the left margin sized to the longest name (8 pt labels);
    # tests/labs/test_encoder_decoder_ddp_viz.py checks them at the controls' extremes
    left = 0.03 + 0.007 * max(len(name) for name in names)
    fig = new_figure(9, 3.5, margins={"left": left, "right": 0.98, "bottom": 0.14, "top": 0.9, "wspace": 0.3})
    bars_ax, curve_ax = fig.subplots(1, 2)
    bars = bars_ax.barh(names, [0.0] * len(names))
    labels = [bars_ax.text(0, row, "", va="center", fontsize=7) for row in range(len(names))]
    bars_ax.invert_yaxis()
    bars_ax.set_xlabel("parameters (millions)")
    bars_ax.tick_params(axis="y", labelsize=8)
    lines = ()
    if with_curve:
        lines = (curve_ax.plot([], [], marker="o", color=UNUSED_COLOR)[0],
                 curve_ax.plot([], [], marker="*", markersize=14, color="k")[0])
    curve_ax.set(xscale="log", xlabel="vocabulary size (log scale)")
    fig.parts.update(bars_ax=bars_ax, curve_ax=curve_ax, bars=bars, labels=labels, lines=lines)
    return fig


def plot_waste(report: WasteReport, curve: list[tuple[int, int]] | None = None,
               figure: Figure | None = None) -> Figure:
    """Parameters per component (the unused ones in vermillion) and, when given, wasted MiB against vocabulary.

    ``figure``: a figure this function drew before, to draw into (a panel's re-draw)."""
    names = tuple(name for name, _, _ in report.components)
    fig = reuse_figure(figure, _build_waste, names, bool(curve))
    parts = fig.parts
    millions = [count / 1e6 for _, count, _ in report.components]
    for bar, label, value, (_, _, unused), row in zip(parts["bars"], parts["labels"], millions, report.components,
                                                      range(len(names)), strict=True):
        bar.set_width(value)
        bar.set_facecolor(UNUSED_COLOR if unused else USED_COLOR)
        label.set_position((value, row))
        label.set_text(f" {value:.2f}M")
    bars_ax, curve_ax = parts["bars_ax"], parts["curve_ax"]
    bars_ax.set_xlim(0, max(millions) * 1.3)
    bars_ax.set_title(f"vocab {report.vocab_size}, dim {report.dim}: vermillion = no gradient", fontsize=10)
    if curve:
        vocabs, wasted = zip(*curve, strict=True)
        line, star = parts["lines"]
        line.set_data(vocabs, [b / 2**20 for b in wasted])
        star.set_data([report.vocab_size], [report.wasted_bytes / 2**20])
        curve_ax.relim()
        curve_ax.set_autoscaley_on(True)
        curve_ax.autoscale_view()
    curve_ax.set_ylim(bottom=0)
    curve_ax.set_ylabel(f"wasted MiB ({report.dtype})")
    curve_ax.set_title(f"encoder to_logits at dim {report.dim}", fontsize=10)
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
    return LabPanel(controls, compute=_waste_compute,
                    plot=lambda result, figure=None: plot_waste(*result, figure=figure), summarize=_waste_summary,
                    title="What does the unused encoder to_logits cost?")
