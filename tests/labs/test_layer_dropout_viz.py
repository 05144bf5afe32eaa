import numpy as np
import pytest
import torch.nn as nn
from matplotlib.figure import Figure

from xtlab.diagnostics import record_gradient_presence
from xtlab.labs.layer_dropout.experiments import run_layer_dropout
from xtlab.labs.layer_dropout.generalization import compare_layer_dropout, compare_over_seeds
from xtlab.labs.layer_dropout.panels import (
    layer_dropout_panel,
    plot_dropout_comparison,
    plot_layer_dropout_run,
    plot_seed_comparison,
    short_row_names,
)
from xtlab.labs.layer_dropout.presence_plot import plot_gradient_presence
from xtlab.widgets.figures import figure_to_png


def test_generic_heatmap_draws_any_module():
    model = nn.Linear(2, 2)
    presence = record_gradient_presence(model, lambda step: model.weight.sum().backward(), steps=3)
    fig = plot_gradient_presence(presence)
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    image = fig.axes[0].get_images()[0].get_array()
    assert np.asarray(image).tolist() == [[2, 2, 2], [0, 0, 0]]  # weight: gradient; bias: none
    assert [tick.get_text() for tick in fig.axes[0].get_yticklabels()] == ["weight", "bias"]


def test_generic_heatmap_rejects_bad_input():
    with pytest.raises(TypeError, match="list"):
        plot_gradient_presence([[1, 0]])
    model = nn.Linear(2, 2)
    presence = record_gradient_presence(model, lambda step: model.weight.sum().backward(), steps=1)
    with pytest.raises(ValueError, match="3"):
        plot_gradient_presence(presence, row_names=["a", "b", "c"])


def test_run_figure_has_heatmap_and_loss_and_named_blocks():
    run = run_layer_dropout(layer_dropout=0.3, depth=2, steps=20, seed=1)
    fig = plot_layer_dropout_run(run)
    assert len(fig.axes) == 2
    names = short_row_names(run)
    kinds = dict(zip(run.block_labels, run.block_kinds, strict=True))
    expected = [label.removeprefix("attn_layers.") + (f" ({kinds[label]})" if label in kinds else "")
                for label in run.grouped().labels]
    assert names == expected  # every name read off the model's module names
    assert "layers.0 (attn)" in names and "layers.3 (ff)" in names and "token_emb" in names
    assert fig.axes[0].get_title().startswith("xtlab: vermillion cells")
    assert len(fig.axes[1].get_lines()[0].get_ydata()) == 20
    with pytest.raises(TypeError, match="dict"):
        plot_layer_dropout_run({})


def test_comparison_figure_has_train_and_val_per_p():
    comparison = compare_layer_dropout(layer_dropouts=(0.0, 0.5), steps=20, eval_every=10, eval_batches=1)
    fig = plot_dropout_comparison(comparison)
    assert len(fig.axes[0].get_lines()) == 4
    with pytest.raises(TypeError, match="NoneType"):
        plot_dropout_comparison(None)


def test_seed_comparison_figure_has_a_line_per_seed_and_a_zero_line():
    comparison = compare_over_seeds(layer_dropouts=(0.0, 0.5), seeds=(0, 1), steps=20, eval_every=10,
                                    eval_batches=1)
    fig = plot_seed_comparison(comparison)
    loss_ax, diff_ax = fig.axes
    assert len(loss_ax.get_lines()) == 2 * (2 + 1)  # per p: one line per seed and the mean
    assert len(diff_ax.get_lines()) == 2 + 1  # per seed, plus the zero line
    zero = diff_ax.get_lines()[-1]
    assert list(zero.get_ydata()) == [0.0, 0.0]
    seed_1 = diff_ax.get_lines()[1]
    assert list(seed_1.get_ydata()) == [comparison.val_differences(0.5, step).values[1] for step in (10, 20)]
    assert all(ax.get_xlabel() and ax.get_ylabel() and ax.get_title() for ax in fig.axes)
    with pytest.raises(TypeError, match="list"):
        plot_seed_comparison([])


@pytest.fixture(scope="module")
def panel():
    return layer_dropout_panel()


def test_panel_starts_at_defaults(panel):
    assert repr(panel).splitlines()[0] == ("LabPanel(layer_dropout=0.1, depth=4, steps=20, seed=0, mode='train', "
                           "neuron_dropout=0.0)")
    run, stats = panel.last_result
    assert run.layer_dropout == 0.1 and stats.num_blocks == 8 and "p = 0.1 is inside" in panel.summary.value


def test_panel_redraws_for_each_control(panel):
    controls = panel.controls
    # depth and steps first: later runs are then cheap
    changes = [("depth", 2), ("steps", 10), ("layer_dropout", 0.5), ("seed", 3), ("neuron_dropout", 0.2),
               ("mode", "eval")]
    for name, value in changes:
        before_png, before_summary, before_count = panel.image.value, panel.summary.value, panel.redraw_count
        controls[name].value = value
        assert panel.redraw_count == before_count + 1, name
        assert panel.image.value != before_png, name
        assert panel.summary.value != before_summary, name
    run, stats = panel.last_result
    assert (run.layer_dropout, run.depth, run.steps, run.seed, run.neuron_dropout, run.mode) == (
        0.5, 2, 10, 3, 0.2, "eval")
    assert stats.skipped_block_steps == 0 and "Skipped block-steps: 0 of 40" in panel.summary.value
    controls["mode"].value = "train"
    assert panel.last_result[1].skipped_block_steps > 0
    assert "of 40 = 0." in panel.summary.value and "L = 4 blocks" in panel.summary.value


def test_panel_neuron_dropout_only_keeps_every_gradient(panel):
    panel.controls["layer_dropout"].value = 0.0
    panel.controls["neuron_dropout"].value = 0.4
    stats = panel.last_result[1]
    assert stats.params_without_gradient == 0
    assert f"Parameter-steps with no gradient: 0 of {stats.param_steps}" in panel.summary.value


def test_layer_dropout_panel_redraws_into_its_figure_as_a_new_figure_would_show():
    panel = layer_dropout_panel()
    first = panel.last_figure
    for name, value in [("steps", 40), ("layer_dropout", 0.5), ("seed", 3), ("mode", "eval")]:
        panel.controls[name].value = value
        assert panel.image.value == figure_to_png(plot_layer_dropout_run(panel.last_result[0]))
    assert panel.last_figure is first
