"""Lab 01 plots and panel: the gradient-presence heatmap of a layer-dropout run, its loss, and its numbers."""

from __future__ import annotations

import ipywidgets as widgets
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from xtlab.labs.layer_dropout.experiments import (
    LayerDropoutRun,
    SkipStatistics,
    run_layer_dropout,
    skip_statistics,
)
from xtlab.labs.layer_dropout.generalization import DropoutComparison, SeedComparison
from xtlab.labs.layer_dropout.presence_plot import gradient_presence_image, show_gradient_presence
from xtlab.widgets.figures import CourseFigure, new_figure, reuse_figure
from xtlab.widgets.panel import LabPanel

# Okabe-Ito colours: told apart with every common colour-vision deficiency
COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00")


def short_row_names(run: LayerDropoutRun) -> list[str]:
    """Heatmap row names, read off the module names: ``layers.3 (ff)`` for a block, else the module's own name."""
    kinds = dict(zip(run.block_labels, run.block_kinds, strict=True))
    names = []
    for label in run.grouped().labels:
        short = label.removeprefix("attn_layers.")
        names.append(f"{short} ({kinds[label]})" if label in kinds else short)
    return names


def _build_layer_dropout_run(row_names: tuple[str, ...]) -> CourseFigure:
    fig = new_figure(*_run_figure_size(len(row_names)), margins=_run_figure_margins(len(row_names)))
    heat_ax, loss_ax = fig.subplots(2, 1, sharex=True, height_ratios=(len(row_names), 6))
    image = gradient_presence_image(heat_ax, row_names)
    heat_ax.set_xlabel("")
    (loss_line,) = loss_ax.plot([], [], color=COLOURS[0], linewidth=1)
    loss_ax.set(xlabel="optimizer step", ylabel="train loss\n(nats/token)")
    loss_ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps are whole numbers
    fig.parts.update(heat_ax=heat_ax, loss_ax=loss_ax, image=image, loss_line=loss_line)
    return fig


RUN_FIGURE_WIDTH = 8.0
RUN_MARGINS_IN = {"left": 1.05, "right": 1.45, "top": 0.5, "bottom": 0.45, "gap": 0.12}  # inches, fixed places


def _run_figure_size(rows: int) -> tuple[float, float]:
    return RUN_FIGURE_WIDTH, 2.4 + 0.16 * rows


def _run_figure_margins(rows: int) -> dict[str, float]:
    """Fixed places in inches turned into the figure fractions ``subplots_adjust`` takes, for this many heatmap
    rows (the figure grows with the rows, the margins around the axes do not): row names on the left, the
    legend on the right, a two-line title on top."""
    width, height = _run_figure_size(rows)
    inches = RUN_MARGINS_IN
    axes_height = height - inches["top"] - inches["bottom"]
    mean_axes = (axes_height - inches["gap"]) / 2
    return {"left": inches["left"] / width, "right": 1 - inches["right"] / width,
            "top": 1 - inches["top"] / height, "bottom": inches["bottom"] / height,
            "hspace": inches["gap"] / mean_axes}


def plot_layer_dropout_run(run: LayerDropoutRun, figure: Figure | None = None) -> Figure:
    """Heatmap of which modules got a gradient at each step (top) and the training loss (bottom).

    ``figure``: a figure this function drew before, to draw into (a panel's re-draw)."""
    if not isinstance(run, LayerDropoutRun):
        raise TypeError(f"run must be a LayerDropoutRun, but got {type(run).__name__}")
    fig = reuse_figure(figure, _build_layer_dropout_run, tuple(short_row_names(run)))
    heat_ax, loss_ax = fig.parts["heat_ax"], fig.parts["loss_ax"]
    show_gradient_presence(fig.parts["image"], run.grouped())
    settings = (f"layer_dropout={run.layer_dropout:g}, depth={run.depth} ({run.num_blocks} blocks), "
                f"{run.mode} mode, neuron dropout={run.neuron_dropout:g}, seed={run.seed}")
    heat_ax.set_title(f"{run.library}: vermillion cells are modules that got no gradient at that step\n{settings}",
                      fontsize=9)
    fig.parts["loss_line"].set_data(range(run.steps), run.losses)
    for ax in (heat_ax, loss_ax):
        ax.relim()
        ax.set_autoscale_on(True)
    for ax in (heat_ax, loss_ax):
        ax.autoscale_view()
    return fig


def summarize_skip_statistics(stats: SkipStatistics) -> str:
    """The panel's numbers, computed from the run: skipped share with its interval, all-blocks steps, losses."""
    low, high = stats.skip_interval
    all_low, all_high = stats.all_blocks_interval
    inside = "inside" if stats.p_in_interval else "outside"
    return (
        f"Skipped block-steps: {stats.skipped_block_steps} of {stats.block_steps} = {stats.skip_fraction:.3f} "
        f"(95% Wilson interval [{low:.3f}, {high:.3f}]); p = {stats.layer_dropout:g} is {inside} it.<br>"
        f"Steps that ran every block: {stats.all_blocks_steps} of {stats.steps} = {stats.all_blocks_fraction:.3f} "
        f"(interval [{all_low:.3f}, {all_high:.3f}]); (1 - p)^L with L = {stats.num_blocks} blocks: "
        f"{stats.all_blocks_expected:.3f}.<br>"
        f"Parameter-steps with no gradient: {stats.params_without_gradient} of {stats.param_steps}. "
        f"Every loss finite: {stats.losses_finite}."
    )


def layer_dropout_panel() -> LabPanel:
    """Controls for p, depth, steps, seed, train/eval mode and neuron dropout; heatmap, loss and numbers re-draw."""
    controls = {
        "layer_dropout": widgets.FloatSlider(value=0.1, min=0.0, max=0.9, step=0.05, description="layer_dropout"),
        "depth": widgets.IntSlider(value=4, min=1, max=6, description="depth"),
        "steps": widgets.IntSlider(value=20, min=10, max=60, step=10, description="steps"),  # a new run: ~0.1 s
        "seed": widgets.IntSlider(value=0, min=0, max=9, description="seed"),
        "mode": widgets.ToggleButtons(options=["train", "eval"], value="train", description="mode"),
        "neuron_dropout": widgets.FloatSlider(value=0.0, min=0.0, max=0.5, step=0.1, description="neuron dropout"),
    }
    return LabPanel(
        controls,
        compute=lambda **values: (run := run_layer_dropout(**values), skip_statistics(run)),  # memoised run
        plot=lambda result, figure=None: plot_layer_dropout_run(result[0], figure=figure),
        summarize=lambda result: summarize_skip_statistics(result[1]),
        title="Layer dropout: which blocks got a gradient?",
    )


def plot_dropout_comparison(comparison: DropoutComparison) -> Figure:
    """Train (dashed) and validation (solid) loss, both in eval mode, for each layer-dropout probability."""
    if not isinstance(comparison, DropoutComparison):
        raise TypeError(f"comparison must be a DropoutComparison, but got {type(comparison).__name__}")
    fig = new_figure(6.5, 3.2)
    ax = fig.add_subplot()
    for index, curve in enumerate(comparison.curves):
        colour = COLOURS[index % len(COLOURS)]
        ax.plot(curve.eval_steps, curve.train_losses, linestyle="--", marker="o", color=colour,
                label=f"p={curve.layer_dropout:g} train")
        ax.plot(curve.eval_steps, curve.val_losses, linestyle="-", marker="o", color=colour,
                label=f"p={curve.layer_dropout:g} validation")
    ax.set(xlabel="optimizer step", ylabel="loss, eval mode (nats/token)",
           title=f"Training on {comparison.train_tokens} tokens: train (dashed) vs validation (solid)")
    ax.legend(fontsize=8)
    return fig


def plot_seed_comparison(comparison: SeedComparison) -> Figure:
    """Left: validation loss per seed (thin) and its mean (thick) for each p. Right: the paired difference to
    the baseline, seed by seed; below zero, layer dropout gave the lower validation loss."""
    if not isinstance(comparison, SeedComparison):
        raise TypeError(f"comparison must be a SeedComparison, but got {type(comparison).__name__}")
    fig = new_figure(9.0, 3.4)
    loss_ax, diff_ax = fig.subplots(1, 2)
    steps = comparison.eval_steps
    for index, p in enumerate(comparison.layer_dropouts):
        colour = COLOURS[index % len(COLOURS)]
        per_step = [comparison.val_losses(p, step) for step in steps]
        for seed_index in range(len(comparison.seeds)):
            loss_ax.plot(steps, [spread.values[seed_index] for spread in per_step], color=colour, linewidth=0.8,
                         alpha=0.5, marker=".", label=f"p={p:g}, one line per seed" if seed_index == 0 else None)
        loss_ax.plot(steps, [spread.mean for spread in per_step], color=colour, linewidth=2.5,
                     label=f"p={p:g}, mean of {len(comparison.seeds)} seeds")
        if p == comparison.baseline:
            continue
        differences = [comparison.val_differences(p, step) for step in steps]
        markers = ("o", "s", "^", "D", "v", "P")
        for seed_index, seed in enumerate(comparison.seeds):
            diff_ax.plot(steps, [spread.values[seed_index] for spread in differences], color=colour,
                         marker=markers[seed_index % len(markers)], linewidth=1, label=f"p={p:g}, seed {seed}")
    diff_ax.axhline(0.0, color="black", linewidth=0.8)
    loss_ax.set(xlabel="optimizer step", ylabel="validation loss (nats/token)",
                title="Validation loss (eval mode): seeds and mean")
    diff_ax.set(xlabel="optimizer step", ylabel=f"minus p={comparison.baseline:g}, same seed (nats/token)",
                title="Paired difference: below 0, it helped")
    loss_ax.legend(fontsize=7)
    diff_ax.legend(fontsize=7)
    return fig
