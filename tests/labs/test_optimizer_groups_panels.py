"""Lab 04 plots and panels, driven by setting control values."""

from matplotlib.figure import Figure

from xtlab.labs.optimizer_groups.groups import group_table
from xtlab.labs.optimizer_groups.panels import (
    decay_panel,
    group_table_html,
    group_table_panel,
    plot_gain_traces,
    plot_group_numel,
    plot_norm_traces,
    unit_offset_panel,
)
from xtlab.labs.optimizer_groups.training import gains_under_strong_decay, norms_under_groupings


def test_plots_return_figures():
    assert isinstance(plot_group_numel(group_table()), Figure)
    assert isinstance(plot_norm_traces(norms_under_groupings(weight_decay=0.1, steps=3)), Figure)
    assert isinstance(plot_gain_traces(gains_under_strong_decay(weight_decay=1.0, steps=3)), Figure)


def test_table_html_lists_every_parameter_with_its_reason():
    text = group_table_html(group_table())
    assert text.count("<tr") == 1 + 28
    assert "rmsnorm_lm.memory_tokens" in text and "ScaleNorm gain" in text and "attention memory keys" in text


def test_group_table_panel_follows_each_control():
    panel = group_table_panel()
    assert repr(panel).startswith("LabPanel(strategy='by_type'")
    image, summary = panel.image.value, panel.summary.value
    panel.controls["strategy"].value = "by_ndim"
    assert panel.last_result.strategy == "by_ndim"
    assert [t.count for t in panel.last_result.totals] == [18, 10]
    assert panel.image.value != image and panel.summary.value != summary
    panel.controls["strategy"].value = "by_type"
    panel.controls["exempt"].value = ("bias", "norm gain")
    assert any(r.name == "rmsnorm_lm.memory_tokens" and r.group == "decay" for r in panel.last_result.rows)
    image = panel.image.value
    panel.controls["weight_decay"].value = 0.5
    assert panel.last_result.weight_decay == 0.5
    assert "(weight decay 0.5)" in panel.summary.value
    assert panel.image.value != image  # the y labels show the decay


def test_decay_panel_retrains_on_a_new_weight_decay():
    panel = decay_panel()
    assert repr(panel).splitlines()[0] == "LabPanel(weight_decay=1.0)"
    image = panel.image.value
    panel.controls["weight_decay"].value = 0.0
    assert panel.last_result.weight_decay == 0.0
    assert panel.image.value != image
    assert "by ndim: memory tokens x" in panel.summary.value


def test_unit_offset_panel_follows_weight_decay():
    panel = unit_offset_panel()
    assert repr(panel).splitlines()[0] == "LabPanel(weight_decay=5.0)"
    image = panel.image.value
    panel.controls["weight_decay"].value = 1.0
    assert panel.last_result.weight_decay == 1.0
    assert panel.image.value != image
    assert "gain stored as offset from 1" in panel.summary.value
