"""The article audit table: verdicts only from the three allowed words, shown as HTML and as text."""

import pytest

from xtlab.course import CAVEAT, FAILS, HOLDS, ArticleAudit, Claim, verdict_of


def test_verdict_of_maps_measurements_to_the_three_words():
    assert verdict_of(True) == HOLDS and verdict_of(True, caveat=True) == CAVEAT and verdict_of(False) == FAILS
    with pytest.raises(TypeError, match="'yes'"):
        verdict_of("yes")


def test_table_shows_every_claim_with_its_verdict():
    audit = ArticleAudit("001 (layer dropout)", (Claim("skips are random", verdict_of(True), "rate 0.1"),
                                                 Claim("it regularises", verdict_of(False), "val 2.47 vs 2.44")))
    assert audit.count(HOLDS) == 1 and audit.count(FAILS) == 1
    assert "1. [holds] skips are random" in repr(audit) and "<b>does not hold</b>" in audit._repr_html_()


def test_bad_claims_are_refused():
    with pytest.raises(ValueError, match="probably"):
        Claim("x", "probably", "y")
    with pytest.raises(TypeError, match="claims"):
        ArticleAudit("a", ())
