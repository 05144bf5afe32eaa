"""Every number and verdict the stored Lab 02 notebook prints, recomputed from the lab's pure functions."""

import re
from pathlib import Path

import pytest

from tests.labs.notebook_text import prose_of, stored_text_of
from xtlab.labs.weight_tying.checkpoints import safe_round_trip
from xtlab.labs.weight_tying.fsdp_exercise import grouping_outcomes, shard_separately
from xtlab.labs.weight_tying.fsdp_runs import run_fsdp, scenario_lines
from xtlab.labs.weight_tying.models import STYLES, ModelSize, build_model, tie_keys, tie_verdict
from xtlab.labs.weight_tying.paths import PATHS, run_path
from xtlab.labs.weight_tying.sharing import (
    article_tied_linear_follows,
    error_without_weight,
    share_feed_forward,
)
from xtlab.labs.weight_tying.training import compare_half_tied_updates
from xtlab.labs.weight_tying.xtransformers import (
    LIBRARIES,
    copy_and_pickle,
    xtransformers_default_head_size,
    xtransformers_default_tie_scale,
    xtransformers_tie_source,
)

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


def test_notebook_defines_only_the_four_exercise_answers():
    source = (ROOT / "notebooks" / "src" / "02_weight_tying.py").read_text()
    assert re.findall(r"^(?:def|class) (\w+)", source, re.M) == ["shard_tied_model", "TiedLinear", "tie_state",
                                                                  "load_naive_checkpoint"]
    assert "from xtlab.labs.weight_tying" not in source


def test_first_cell_links_the_article_page_in_the_repository():
    first = prose_of(EDITIONS[0]).split("\n# ")[0]
    assert "[article 003](../xtlab/articles/003_weight_tying.md)" in first and "shared/articles" not in first


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


def test_predictions_reveal_the_computed_answers():
    solutions = stored_text_of(EDITIONS[1])
    assert solutions.count("Answer (computed):") == 3
    assert "Answer (computed): one Parameter for both\nthe copy's pair is tied" in solutions
    assert "Answer (computed): two separate memories\nload_state_dict copies values" in solutions
    assert "equal values (True)" in solutions
    assert "Answer (computed): raises an error" in solutions
    assert "Answer (computed)" not in stored_text_of(EDITIONS[0])


def test_half_tied_update_ratios(stored_text):
    comparison = compare_half_tied_updates(steps=5, lr=1e-3, weight_decay=0.1)
    assert f"per step: {[round(float(r), 2) for r in comparison.ratios]}" in stored_text
    assert (f"weight decay {comparison.decays_tied:.2f} times to the tied weight and "
            f"{comparison.decays_half_tied:.2f} times to the half-tied one") in stored_text


def test_fsdp_table_and_errors_are_the_real_run(stored_text, fsdp):
    assert "backend gloo, device of every rank's shards: cpu, 2 processes, every rank finished: True" in stored_text
    assert fsdp.device == "cpu"
    solutions = stored_text_of(EDITIONS[1])
    for line in scenario_lines(fsdp):
        assert line in solutions
    assert scenario_lines(fsdp)[1] not in stored_text_of(EDITIONS[0])  # gated until the prediction is committed
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


def test_x_transformers_tie_is_quoted_from_the_installed_package_with_its_scale(stored_text):
    source = xtransformers_tie_source()
    assert "tie_embedding_scale" in source.text and "self.to_logits = lambda t:" in source.text
    assert source.path == "x_transformers/x_transformers.py"
    assert repr(source).splitlines()[-1] in stored_text
    head, scale = xtransformers_default_head_size(), xtransformers_default_tie_scale(ModelSize().dim)
    assert head == 64 and scale == pytest.approx(ModelSize().dim ** -0.5)
    assert f"tie scale at dim {ModelSize().dim}: {scale:.4f} (dim ** -0.5 = {scale:.4f}); default head size: {head}" \
        in stored_text
    prose = prose_of(EDITIONS[0])
    assert "dim // heads` in x-transformers" not in prose and "would get heads of 64" in prose


def test_audit_is_numbered_single_claims_with_a_verdict_question_first():
    source = (ROOT / "notebooks" / "src" / "02_weight_tying.py").read_text()
    assert source.index("predict_verdicts(\"003\", list(range(1, 11)))") < source.index("audit_question.reveal(")
    solutions = stored_text_of(EDITIONS[1])
    for number in range(1, 11):
        assert re.search(rf"^{number}\. \[(holds|holds only under an unstated condition|does not hold)\] ", solutions,
                         re.M), number
    assert not re.search(r"^\d+\. \[(holds|does not hold)", stored_text_of(EDITIONS[0]), re.M)


def test_audit_verdicts_follow_the_measurements(fsdp):
    text = stored_text_of(EDITIONS[1])
    assert run_path("naive", "torch_save_load").verdict == "tied"
    assert [p for p in ("torch_save_load", "conflicting_keys", "assign", "safetensors")
            if run_path("naive", p).verdict != "tied"] == ["assign", "safetensors"]
    early = fsdp.scenario("naive, to_empty then fully_shard")
    assert early.tie_parameters == 2
    assert "1. [holds only under an unstated condition] Tying" in text
    naive_val = sum(r.val_in_memory for r in fsdp.rows_of("naive")) / len(fsdp.rows_of("naive"))
    tied_val = sum(r.val_in_memory for r in fsdp.rows_of("tied_linear")) / len(fsdp.rows_of("tied_linear"))
    assert naive_val <= tied_val  # in memory the model FSDP untied is not worse
    assert "2. [does not hold] Weight tying makes training more efficient" in text
    assert f"mean validation loss of {naive_val:.3f} in memory, the tied TiedLinear model {tied_val:.3f}" in text
    assert "3. [holds only under an unstated condition] Tying by assigning" in text
    assert "4. [holds] With several devices" in text
    assert "5. [holds] Meta Lingua replaced" in text
    assert "6. [holds only under an unstated condition] `TiedLinear` keeps the tie" in text
    assert fsdp.scenario("registered, embedding in own group").outcome == "error"
    assert fsdp.scenario("registered TiedLinear, root group").outcome == "tied"
    assert "7. [does not hold] `TiedLinear` handles weight sharing across devices by itself." in text
    assert "8. [holds] `TiedLinear` raises an `AttributeError`" in text
    assert "9. [holds only under an unstated condition] The same wrapper pattern" in text
    assert "10. [holds only under an unstated condition] A wrong tying implementation" in text


def test_cell_30_and_the_audit_row_on_devices_say_the_same(fsdp):
    prose = prose_of(EDITIONS[0])
    assert "So `TiedLinear` does **not** handle\n# the multi-device case by itself" in prose or \
        "does **not** handle" in prose
    text = stored_text_of(EDITIONS[1])
    assert f"'TiedLinear, root group': '{fsdp.scenario('TiedLinear, root group').outcome}'" in text
    assert "'TiedLinear, embedding in own group': 'error'" in text
    assert "so not by itself" in text


def test_article_tied_linear_and_feed_forward_sharing(stored_text):
    sharing = share_feed_forward()
    assert error_without_weight() == "AttributeError" and article_tied_linear_follows()
    assert sharing.unbiased_difference == 0 and sharing.biased_difference > 0.01 and sharing.follows
    assert f"largest difference {sharing.biased_difference:.3f} with biases, 0.000 without" in stored_text


def test_naive_checkpoint_shown_diverged(stored_text):
    assert "keys ['token_emb.weight', 'to_logits.weight'], equal: False" in stored_text


def test_exercises_are_not_yet_in_the_learner_edition_and_pass_in_the_solutions():
    learner, solutions = stored_text_of(EDITIONS[0]), stored_text_of(EDITIONS[1])
    for name in ("shard_tied_model", "TiedLinear", "tie_state", "load_naive_checkpoint"):
        assert f"NOT YET: `{name}`" in learner
    assert solutions.count("PASS: ") == 4
    assert "PASS: 3 hidden tied models on 2 real gloo ranks" in solutions


def test_the_breaking_grouping_is_computed_on_two_ranks_and_root_only_is_tied(stored_text, fsdp):
    for outcome in grouping_outcomes(shard_separately):
        assert not outcome.keeps_the_tie and outcome.line() in stored_text
    source = (ROOT / "notebooks" / "src" / "02_weight_tying.py").read_text()
    assert "lab.grouping_outcomes(lab.shard_separately)" in source
    # "a single fully_shard(model, mesh=mesh) is a correct answer too (the table's root-group rows)"
    assert fsdp.scenario("naive, root group").outcome == fsdp.scenario("TiedLinear, root group").outcome == "tied"
    assert "A single `fully_shard(model, mesh=mesh)` is a correct answer too" in prose_of(EDITIONS[0])
