"""Every number and verdict the stored Lab 02 notebook prints, recomputed from the lab's pure functions."""

import re
from pathlib import Path

import pytest

from tests.labs.notebook_text import stored_text_of
from xtlab.labs.weight_tying.checkpoints import safe_round_trip
from xtlab.labs.weight_tying.fsdp_runs import run_fsdp, scenario_lines
from xtlab.labs.weight_tying.models import STYLES, build_model, tie_keys, tie_verdict
from xtlab.labs.weight_tying.paths import PATHS, run_path
from xtlab.labs.weight_tying.training import compare_half_tied_updates
from xtlab.labs.weight_tying.xtransformers import LIBRARIES, copy_and_pickle

ROOT = Path(__file__).resolve().parents[2]
EDITIONS = (ROOT / "notebooks" / "02_weight_tying.ipynb", ROOT / "solutions" / "02_weight_tying.ipynb")
TIED_STYLES = ("naive", "tied_linear", "registered")


@pytest.fixture(scope="module", params=EDITIONS, ids=["learner", "solutions"])
def stored_text(request) -> str:
    return stored_text_of(request.param)


@pytest.fixture(scope="module")
def fsdp():
    report = run_fsdp()  # the notebook's call; the same process-cached launch as test_weight_tying_fsdp
    assert report.ok, report.errors
    return report


def test_notebook_defines_only_the_three_exercise_answers():
    source = (ROOT / "notebooks" / "src" / "02_weight_tying.py").read_text()
    assert re.findall(r"^(?:def|class) (\w+)", source, re.M) == ["TiedLinear", "tie_state", "save_and_load"]
    assert "from xtlab.labs.weight_tying" not in source


def test_styles_as_built(stored_text):
    for style, label in STYLES.items():
        model = build_model(style)
        line = (f"{label:32s} {tie_verdict(model):9s} Parameter objects={len(list(model.parameters()))}  "
                f"elements={sum(p.numel() for p in model.parameters())}  tie keys={tie_keys(model)}")
        assert line in stored_text


def test_paths_table_every_cell(stored_text):
    for path, (label, _) in PATHS.items():
        row = f"{label:44s}" + "".join(f"{run_path(style, path).verdict:20s}" for style in TIED_STYLES)
        assert row in stored_text
    conflict = run_path("naive", "conflicting_keys").facts
    assert f"loaded silently={conflict['loaded_silently']}, the values kept come from {conflict['winner']}" \
        in stored_text
    assert f"= {run_path('naive', 'init_order').facts['init_order']}" in stored_text


def test_predictions_reveal_the_computed_answers(stored_text):
    assert stored_text.count("Answer (computed):") == 3
    assert "Answer (computed): tied\nthe copy's pair is tied" in stored_text
    assert "Answer (computed): untied\nload_state_dict copies values" in stored_text
    assert "equal values (True)" in stored_text
    assert "Answer (computed): raises an error" in stored_text


def test_half_tied_update_ratios(stored_text):
    comparison = compare_half_tied_updates(steps=5, lr=1e-3, weight_decay=0.1)
    assert f"per step: {[round(float(r), 2) for r in comparison.ratios]}" in stored_text
    assert (f"weight decay {comparison.decays_tied:.2f} times to the tied weight and "
            f"{comparison.decays_half_tied:.2f} times to the half-tied one") in stored_text


def test_fsdp_table_and_errors_are_the_real_run(stored_text, fsdp):
    assert "backend gloo, 2 processes, every rank finished: True" in stored_text
    for line in scenario_lines(fsdp):
        assert line in stored_text
    for row in fsdp.scenarios:
        if row.error:
            assert f"{row.scenario.name}:\n  {row.error}" in stored_text


def test_lingua_replay_numbers(stored_text, fsdp):
    for row in fsdp.reloads:
        assert (f"seed {row.seed}: Parameters while training {row.tie_parameters}, train loss {row.first_loss:.2f} -> "
                f"{row.last_loss:.2f}, checkpoint tensors differ {row.checkpoint_differs!s:5s}, val in memory "
                f"{row.val_in_memory:.3f}, reloaded {row.val_reloaded:.3f} ({row.verdict_reloaded})") in stored_text
    naive, tied = fsdp.reload_gaps("naive"), fsdp.reload_gaps("tied_linear")
    assert (f"naive: mean {naive.mean():.3f}, range [{naive.min():.3f}, {naive.max():.3f}]; TiedLinear: largest "
            f"|difference| {abs(tied).max():.3f}") in stored_text


def test_safe_checkpoints_and_x_transformers(stored_text):
    for style in TIED_STYLES:
        trip = safe_round_trip(style)
        assert (f"tensors in file {trip.tensors_in_file} (state_dict keys {trip.state_dict_keys}), reloaded "
                f"{trip.verdict}, values restored {trip.values_restored}, disagreeing checkpoint refused: "
                f"{trip.conflicting_refused}") in stored_text
    for library in LIBRARIES:
        result = copy_and_pickle(library)
        assert f"{library}: to_logits is a {result.to_logits_type}, {result.parameters} parameters" in stored_text
        assert f"edited: {result.copy_follows_original}" in stored_text


def test_audit_verdicts_follow_the_measurements(stored_text, fsdp):
    naive_breaks = [p for p in ("torch_save_load", "conflicting_keys", "assign", "safetensors")
                    if run_path("naive", p).verdict != "tied"]
    assert naive_breaks == ["assign", "safetensors"] and run_path("naive", "torch_save_load").verdict == "tied"
    assert "1. [holds with a caveat] Assigning the output's weight" in stored_text
    assert "2. [holds with a caveat] With several devices" in stored_text
    assert "3. [holds with a caveat] The article's TiedLinear keeps the tie" in stored_text
    assert fsdp.scenario("registered, embedding in own group").outcome == "error"
    assert "4. [holds with a caveat] TiedLinear handles weight sharing across devices" in stored_text
    assert "5. [holds] Tying cuts the parameter count." in stored_text
    naive_val = sum(r.val_in_memory for r in fsdp.rows_of("naive")) / 3
    tied_val = sum(r.val_in_memory for r in fsdp.rows_of("tied_linear")) / 3
    assert naive_val <= tied_val  # the caveat: in memory the untied-by-FSDP model is not worse
    assert "6. [holds with a caveat] A wrong tying implementation hurts the trained model." in stored_text
    assert f"mean validation loss was {naive_val:.3f}, TiedLinear's {tied_val:.3f}" in stored_text


def test_broken_save_and_load_shown_failing(stored_text):
    assert "naive assignment raised RuntimeError: Some tensors share memory" in stored_text
    assert f"{STYLES['tied_linear']:16s} loaded, tied" in stored_text
