"""Lab 02: drive both panels through their controls; plots; exercise checkers (right and wrong answers)."""


from xtlab.labs.weight_tying.panels import paths_panel, plot_validation_symptom, updates_panel
from xtlab.labs.weight_tying.training import validation_symptom


def test_paths_panel_reacts_to_style_and_path():
    panel = paths_panel()
    assert repr(panel).splitlines()[0] == "LabPanel(style='naive', path='meta_to_empty', steps=5)"
    assert "verdict: untied" in panel.summary.value and "different" in panel.summary.value
    first_png = panel.image.value
    panel.controls["style"].value = "tied_linear"
    outcome, drift = panel.last_result
    assert outcome.verdict == "tied" and "verdict: tied" in panel.summary.value
    assert "token_emb.weight" in panel.summary.value and "= 11" in panel.summary.value
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


def test_plot_validation_symptom_has_two_axes():
    fig = plot_validation_symptom(validation_symptom(steps=3))
    assert len(fig.axes) == 2
