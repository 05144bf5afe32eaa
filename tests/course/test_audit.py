"""The article audit: rows cite claims by number from the article's page, three verdicts under written rules, and
the learner's verdicts committed before the computed ones show."""

import pytest

from xtlab.course import (
    FAILS,
    HOLDS,
    RULES,
    UNSTATED,
    ArticleAudit,
    Claim,
    article,
    forget_verdicts,
    show_answers,
    verdict_of,
)
from xtlab.widgets import predict_verdicts


@pytest.fixture(autouse=True)
def fresh_kernel():
    forget_verdicts()
    yield
    forget_verdicts()


def test_running_the_verdicts_cell_again_keeps_the_commitment():
    predict_verdicts("001", [1, 2]).commit({1: "holds", 2: "fails"})
    assert predict_verdicts("001", [1, 2]).committed == {1: HOLDS, 2: FAILS}
    assert predict_verdicts("001", [1, 3]).committed is None


def _audit():
    return ArticleAudit("001", (Claim(1, verdict_of(True), "rate 0.1"),
                                Claim(2, verdict_of(True, True), "only with None grads", condition="grads None"),
                                Claim(3, verdict_of(False), "val 2.47 vs 2.44")))


def test_verdict_of_maps_measurements_to_the_three_verdicts():
    assert verdict_of(True) == HOLDS and verdict_of(True, True) == UNSTATED and verdict_of(False) == FAILS
    assert verdict_of(False, True) == FAILS
    with pytest.raises(TypeError, match="'yes'"):
        verdict_of("yes")


def test_each_row_shows_the_page_claim_its_verdict_the_rule_applied_and_the_evidence():
    audit = _audit()
    text = repr(audit)
    assert audit.count(HOLDS) == audit.count(UNSTATED) == audit.count(FAILS) == 1
    assert f"1. [holds] {article('001').claim(1)}" in text
    assert f"rule: {RULES[UNSTATED]}: grads None" in text and f"rule: {RULES[FAILS]}" in text
    assert "xtlab/articles/001_layer_dropout.md" in text and "<b>does not hold</b>" in audit._repr_html_()


def test_bad_rows_are_refused():
    with pytest.raises(ValueError, match="probably"):
        Claim(1, "probably", "y")
    with pytest.raises(TypeError, match="int"):
        Claim("x", HOLDS, "y")
    with pytest.raises(ValueError, match="condition"):
        Claim(1, UNSTATED, "y")
    with pytest.raises(ValueError, match="condition"):
        Claim(1, HOLDS, "y", condition="z")
    with pytest.raises(ValueError, match="claim number 99"):
        ArticleAudit("001", (Claim(99, HOLDS, "y"),))
    with pytest.raises(ValueError, match="judged once"):
        ArticleAudit("001", (Claim(1, HOLDS, "y"), Claim(1, FAILS, "z")))
    with pytest.raises(TypeError, match="claims"):
        ArticleAudit("001", ())


def test_computed_verdicts_stay_hidden_until_the_learner_commits_theirs():
    guess = predict_verdicts("001", [1, 2, 3])
    assert "holds only under an unstated condition" in repr(guess) and article("001").claim(2) in repr(guess)
    locked = guess.reveal(_audit())
    assert "[holds]" not in repr(locked) and "hidden until you commit" in repr(locked)
    assert "does not hold" not in locked._repr_html_()
    guess.commit({1: "holds", 2: "fails", 3: "does not hold"})
    shown = guess.reveal(_audit())
    assert shown.matched == 2 and "matched 2 of 3" in repr(shown) and "your verdict: does not hold" in repr(shown)


def test_a_commitment_must_judge_every_claim_with_a_known_verdict():
    guess = predict_verdicts("001", [1, 2])
    with pytest.raises(ValueError, match="missing \\[2\\]"):
        guess.commit({1: "holds"})
    with pytest.raises(ValueError, match="'maybe'"):
        guess.commit({1: "holds", 2: "maybe"})
    with pytest.raises(ValueError, match="asked about"):
        predict_verdicts("001", [1, 2, 3]).reveal(ArticleAudit("001", (Claim(1, HOLDS, "y"),)))


def test_the_solutions_edition_shows_the_audit_without_verdicts_committed():
    show_answers()
    try:
        shown = predict_verdicts("001", [1, 2, 3]).reveal(_audit())
        assert "[does not hold]" in repr(shown) and "solutions edition" in repr(shown)
    finally:
        show_answers(False)


def test_every_page_parses_with_numbered_claims():
    for number in ("000", "001", "002", "003", "004"):
        page = article(number)
        assert page.title and page.setting and len(page.claims) >= 5
        assert page.path.startswith("xtlab/articles/") and page.fields["Author"]
    with pytest.raises(ValueError, match="no article page"):
        article("999")
