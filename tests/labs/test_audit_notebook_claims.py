"""Every number and verdict the stored Lab 06 notebook prints or its prose states, recomputed from the library and
the lab's pure functions. Outputs gated behind a prediction are read from the solutions edition."""

import copy
import re
from pathlib import Path

import pytest

import xtlab
from tests.labs.notebook_text import prose_of, stored_text_of
from xtlab.diagnostics.model_audit import COULD_NOT_RUN, FAILS, HOLDS, MISSING_CAPABILITY, Subject, audit_models
from xtlab.diagnostics.ties import embedding_output_tie
from xtlab.interop import twin_of
from xtlab.labs import audit as lab

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "06_audit.ipynb"
SOLUTIONS = ROOT / "solutions" / "06_audit.ipynb"
SOURCE = ROOT / "notebooks" / "src" / "06_audit.py"


@pytest.fixture(scope="module")
def stored_text() -> str:
    return stored_text_of(NOTEBOOK)


@pytest.fixture(scope="module")
def solutions_text() -> str:
    return stored_text_of(SOLUTIONS)


@pytest.fixture(scope="module")
def models():
    x_model, recipe = lab.build_x_transformers(seed=0)
    tiny = lab.build_tiny_lm(seed=0, value_head=True)
    return {"x-transformers": Subject(x_model, build=recipe), "xtlab twin": twin_of(x_model),
            "torch.nn.Transformer": lab.build_torch_transformer(seed=0),
            "TinyLM": Subject(tiny, lab.tiny_lm_adapter(tiny))}


@pytest.fixture(scope="module")
def cards(models):
    return audit_models(models, seed=0, steps=8)


def test_notebook_defines_only_exercise_answers_and_states_objectives_and_time():
    code = SOURCE.read_text()
    assert re.findall(r"^def (\w+)", code, re.M) == ["adapter_for_tiny_lm", "outputs_ignore_later_tokens",
                                                     "audit_unknown"]
    assert not re.search(r"^class ", code, re.M) and "(nn.Module)" not in code
    prose = prose_of(NOTEBOOK)
    objectives = prose.split("**After this lab you will be able to**")[1].split("**Estimated time:**")[0]
    assert 3 <= objectives.count("\n- ") <= 5
    assert re.search(r"\*\*Estimated time:\*\* 55 minutes", prose)


def test_every_report_card_is_printed_as_computed(cards, stored_text, solutions_text):
    for card in cards.values():
        assert repr(card) in solutions_text, card.name
        assert (repr(card) in stored_text) == (card.name != "x-transformers"), card.name  # gated in the learner's
    assert "Hidden until you commit: the x-transformers report card" in stored_text
    assert [row.key for row in cards["x-transformers"].rows][-1] == "ddp_step"


def test_the_library_differences_are_the_three_rows_the_prose_names(cards, stored_text):
    differ = [row.key for row, twin_row in zip(cards["x-transformers"].rows, cards["xtlab twin"].rows, strict=True)
              if row.status != twin_row.status]
    assert differ == ["layer_dropout_seeding", "mems_none_vs_zero", "tying_paths", "deepcopy_independence"]
    assert "differ on four rows" in prose_of(NOTEBOOK)
    for key in differ:
        assert cards["x-transformers"].status(key) == FAILS and cards["xtlab twin"].status(key) == HOLDS
        assert f"{key}: x-transformers fails, xtlab twin holds" in stored_text


def test_both_cards_fail_segmented_versus_full_by_the_same_amount(cards):
    rows = [cards[name].row("segmented_vs_full") for name in ("x-transformers", "xtlab twin")]
    assert all(row.status == FAILS for row in rows)
    assert rows[0].evidence.split(" on the second")[0] == rows[1].evidence.split(" on the second")[0]


def test_layer_dropout_fails_the_first_row_and_ddp_trains_all_but_tiny_lm(cards, models):
    for name, card in cards.items():
        has_layer_dropout = name != "torch.nn.Transformer"
        assert (card.status("gradient_presence") == FAILS) == has_layer_dropout, name
        assert (card.status("ddp_step") == HOLDS) == (name != "TinyLM"), name
    assert cards["TinyLM"].status("unused_parameters") == FAILS
    assert "value_head.weight" in cards["TinyLM"].row("unused_parameters").evidence
    assert "Expected to have finished reduction" in cards["TinyLM"].row("ddp_step").evidence
    assert cards["x-transformers"].status("unused_parameters") == HOLDS


def test_the_deepcopy_reveal_and_the_rows_that_could_not_run(models, cards, solutions_text):
    x_model = models["x-transformers"].model
    tie = embedding_output_tie(copy.deepcopy(x_model), "token_emb", "to_logits").value
    assert tie == "untied" and "Answer (computed): no, untied" in solutions_text
    torch_card = cards["torch.nn.Transformer"]
    assert {row.key for row in torch_card.rows if row.status == COULD_NOT_RUN} == {
        "layer_dropout_seeding", "mems_none_vs_zero", "segmented_vs_full", "tying_paths"}
    assert {row.reason for row in torch_card.rows if row.status == COULD_NOT_RUN} == {MISSING_CAPABILITY}


def test_memory_features_lines_and_reveal(stored_text, solutions_text):
    rows = lab.segmented_by_memory_features(seed=0)
    for (memory_tokens, memory_kv), row in rows.items():
        line = (f"memory tokens {memory_tokens!s:>5}, memory key/values {memory_kv!s:>5}: {row.status:>5}, "
                f"{row.evidence.split(': ')[1]}")
        assert line in solutions_text and line not in stored_text
    assert lab.holding_builds(rows) == ((False, False),)
    assert "Answer (computed): only the build with neither" in solutions_text


def test_the_planted_bug_fails_the_extra_row_and_its_twin_holds(stored_text):
    planted, fixed = lab.planted_pair(seed=0)
    for name, model, status, leak in (("planted bug", planted, "fails", 0), ("fixed twin", fixed, "holds", None)):
        card = xtlab.audit(model, lab.tiny_lm_adapter(model), ddp=False, extra_checks={"c": lab.causality_reference})
        assert card.status("c") == status
        assert lab.first_leaking_position(model, lab.tiny_lm_adapter(model)) == leak
        assert f"{name}: {status}; first position that sees the next token: {leak}" in stored_text


def test_the_panel_is_stored_with_its_summary(stored_text):
    x_model, _ = lab.build_x_transformers(seed=0)
    runs = lab.seeding_runs(x_model, "x-transformers", 0.3)
    assert lab.summarize_seeding_runs(runs).split(":")[0] in stored_text
    assert runs.steps_that_differ > 0


def test_the_last_exercise_runs_on_tiny_lm_and_agrees_with_its_card(cards, stored_text, solutions_text):
    tiny = lab.build_tiny_lm(seed=0, value_head=True)
    findings = lab.findings_on(None, tiny, lab.tiny_lm_adapter(tiny))
    lines = (f"tied {findings.tied}", f"unused ({len(findings.unused)}): {findings.unused}",
             f"no decay ({len(findings.no_decay)}): {findings.no_decay}",
             f"the card: {cards['TinyLM'].row('unused_parameters').evidence}")
    for line in lines:
        assert line in stored_text and line in solutions_text
    assert f"the reference: tied {findings.tied}" in stored_text and f"yours: tied {findings.tied}" in solutions_text
    assert findings.unused == ["value_head.bias", "value_head.weight"]  # the prose: "the two value_head parameters"
    assert "the two `value_head` parameters are the only unused ones" in prose_of(NOTEBOOK)
    assert "embed.weight" in findings.no_decay and "head.weight" not in findings.no_decay  # the tie appears once
    assert "PASS: your audit finds" in solutions_text and "NOT YET: `audit_unknown`" in stored_text
