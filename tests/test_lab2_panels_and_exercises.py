"""Lab 02: drive both panels through their controls; plots; exercise checkers (right and wrong answers)."""

import pytest
import torch

from xtlab import TiedLinear
from xtlab.exercises.weight_tying import check_fix_survives_to_empty, check_is_tied
from xtlab.experiments.weight_tying_training import validation_symptom
from xtlab.model.tied_linear import tie_registered
from xtlab.viz.weight_tying import paths_panel, plot_validation_symptom, updates_panel


def test_paths_panel_reacts_to_style_and_path():
    panel = paths_panel()
    assert repr(panel) == "LabPanel(style='naive', path='meta_to_empty', steps=5)"
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
    assert "verdict: aliased" in panel.summary.value and "same" in panel.summary.value


def test_paths_panel_steps_slider_changes_the_training_length():
    panel = paths_panel()
    panel.controls["steps"].value = 2
    assert len(panel.last_result[1].update_sizes) == 2


def test_updates_panel_reacts_to_weight_decay_and_steps():
    panel = updates_panel()
    assert "2.00 times (aliased)" in panel.summary.value
    first_png = panel.image.value
    panel.controls["steps"].value = 3
    assert len(panel.last_result.ratios) == 3 and panel.image.value != first_png
    panel.controls["weight_decay"].value = 0.0
    assert "no weight decay" in panel.summary.value


def test_plot_validation_symptom_has_two_axes():
    fig = plot_validation_symptom(validation_symptom(steps=3))
    assert len(fig.axes) == 2


def reference_is_tied(a, b):
    if a is b:
        return "tied"
    return "aliased" if a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr() else "untied"


def test_check_is_tied_passes_the_reference_solution(capsys):
    assert check_is_tied(reference_is_tied).passed
    assert "PASS" in capsys.readouterr().out


@pytest.mark.parametrize(("answer", "hint"), [
    (lambda a, b: "tied" if torch.equal(a, b) else "untied", "data_ptr"),
    (lambda a, b: "tied" if a is b else "untied", "data_ptr"),
    (lambda a, b: "tied", "data_ptr"),
    (lambda a, b: "tied" if a is b else "aliased", "torch.equal"),
])
def test_check_is_tied_explains_a_wrong_answer(answer, hint):
    verdict = check_is_tied(answer)
    assert not verdict.passed and hint in verdict.message


def test_check_is_tied_reports_a_crash_and_a_non_callable():
    assert "ZeroDivisionError" in check_is_tied(lambda a, b: 1 / 0).message
    assert "pass your function" in check_is_tied("tied").message


def test_check_fix_passes_tied_linear_and_explains_wrong_fixes():
    def fix(model):
        model.to_logits = TiedLinear(model.token_emb)
        return model

    assert check_fix_survives_to_empty(fix).passed
    assert "untied" in check_fix_survives_to_empty(lambda model: model).message
    assert "tied_module" in check_fix_survives_to_empty(tie_registered).message
    assert "return the model" in check_fix_survives_to_empty(lambda model: None).message
