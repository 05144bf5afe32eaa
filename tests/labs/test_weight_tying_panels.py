"""Lab 02: drive both panels through their controls; the FSDP reload plot."""

import numpy as np

from xtlab.labs.weight_tying.fsdp_ranks import TrainConfig
from xtlab.labs.weight_tying.fsdp_runs import FSDPReport, ReloadRow
from xtlab.labs.weight_tying.panels import (
    paths_panel,
    plot_drift,
    plot_reload_gap,
    plot_update_comparison,
    updates_panel,
)
from xtlab.widgets.figures import figure_to_png


def test_paths_panel_reacts_to_style_and_path():
    panel = paths_panel()
    assert repr(panel).splitlines()[0] == "LabPanel(style='naive', path='meta_to_empty', steps=5)"
    assert "verdict: untied" in panel.summary.value and "different" in panel.summary.value
    first_png = panel.image.value
    panel.controls["style"].value = "tied_linear"
    outcome, drift = panel.last_result
    assert outcome.verdict == "tied" and "verdict: tied" in panel.summary.value
    assert "token_emb.weight" in panel.summary.value and f"= {outcome.num_parameters}" in panel.summary.value
    assert panel.image.value != first_png
    panel.controls["path"].value = "safetensors"
    assert panel.last_result[0].verdict == "tied"
    panel.controls["style"].value = "naive"
    assert "verdict: error" in panel.summary.value and "share memory" in panel.summary.value
    panel.controls["path"].value = "assign"
    assert "verdict: half-tied" in panel.summary.value and "same" in panel.summary.value


def test_paths_panel_steps_slider_changes_the_training_length():
    panel = paths_panel()
    panel.controls["steps"].value = 2
    assert len(panel.last_result[1].update_sizes) == 2


def test_updates_panel_reacts_to_weight_decay_and_steps():
    panel = updates_panel()
    assert "2.00 times (half-tied)" in panel.summary.value
    first_png = panel.image.value
    panel.controls["steps"].value = 3
    assert len(panel.last_result.ratios) == 3 and panel.image.value != first_png
    panel.controls["weight_decay"].value = 0.0
    assert "no weight decay" in panel.summary.value


def _report(gaps: dict[str, list[float]]) -> FSDPReport:
    rows = tuple(ReloadRow(style, seed, 1, 3.8, 2.9, False, 2.9, 2.9 + gap, "tied")
                 for style, values in gaps.items() for seed, gap in enumerate(values))
    return FSDPReport(True, {}, "gloo", 2, "test", 0.0, (), rows, TrainConfig())


def test_reload_plot_bars_start_at_zero_and_show_every_seed():
    fig = plot_reload_gap(_report({"naive": [0.5, 0.7, 0.3], "tied_linear": [0.0, 0.0, 0.0]}))
    left, right = fig.axes
    assert left.get_ylim()[0] == 0.0  # no truncated axis: a small gap must look small
    assert "loss" in left.get_ylabel() and "reloaded - in memory" in right.get_ylabel()
    dots = np.concatenate([collection.get_offsets()[:, 1] for collection in right.collections])
    assert sorted(np.round(dots, 6)) == [0.0, 0.0, 0.0, 0.3, 0.5, 0.7]
    assert [round(bar.get_height(), 6) for bar in right.patches] == [0.5, 0.0]


def test_updates_panel_redraws_into_its_figure_as_a_new_figure_would_show():
    panel = updates_panel()
    first = panel.last_figure
    for name, value in [("weight_decay", 0.5), ("weight_decay", 0.0), ("steps", 10)]:
        panel.controls[name].value = value
        assert panel.image.value == figure_to_png(plot_update_comparison(panel.last_result))
    assert panel.last_figure is not first  # ten steps: ten bars, a new figure


def test_paths_panel_redraws_into_its_figure_as_a_new_figure_would_show():
    panel = paths_panel()
    first = panel.last_figure
    panel.controls["style"].value = "tied_linear"
    assert panel.last_figure is first
    for name, value in [("path", "safetensors"), ("style", "naive"), ("steps", 8)]:  # naive + safetensors raises
        panel.controls[name].value = value
        assert panel.image.value == figure_to_png(plot_drift(panel.last_result[1]))
