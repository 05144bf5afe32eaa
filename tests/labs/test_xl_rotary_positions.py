"""Lab 03, positions: only the offsets matter to rotary; overlap and the article's order break the invariant."""

import pytest

from xtlab.labs.xl_rotary.models import EXACT_TOLERANCE
from xtlab.labs.xl_rotary.positions import POSITION_SCHEMES, article_order, position_schemes, segment_attention_gap


def test_shifted_numbering_agrees_and_overlap_does_not():
    result = position_schemes(num_mems=4, seq_len=8)
    assert result.positions["arange(-M, T)"] == list(range(-4, 8))
    assert result.agrees == {"arange(-M, T)": True, "arange(0, M + T)": True, "both from 0 (overlap)": False}
    assert result.offsets_kept == result.agrees
    assert result.gap["both from 0 (overlap)"] > 0.1


@pytest.mark.parametrize("shift", [-7, 3, 1000])
def test_any_uniform_shift_keeps_the_invariant(shift):
    assert segment_attention_gap([p + shift for p in range(-3, 5)], 3, 5) < EXACT_TOLERANCE


def test_the_article_order_breaks_it_and_without_memories_every_scheme_agrees():
    assert article_order(2, 5) == [-1, -2, 0, 1, 2, 3, 4]
    assert segment_attention_gap(article_order(2, 5), 2, 5) > 0.01
    assert segment_attention_gap(article_order(1, 5), 1, 5) < EXACT_TOLERANCE  # one memory: no order to get wrong
    assert all(position_schemes(num_mems=0, seq_len=5).agrees.values())
    assert set(POSITION_SCHEMES) == set(position_schemes().gap)


def test_bad_positions_are_named():
    with pytest.raises(ValueError, match="M \\+ T = 5"):
        segment_attention_gap([0, 1, 2], 2, 3)
    with pytest.raises(TypeError, match="ints"):
        segment_attention_gap(["0", "1", "2"], 1, 2)
    with pytest.raises(TypeError, match="list of ints"):
        segment_attention_gap("012", 1, 2)
    with pytest.raises(ValueError, match="even"):
        segment_attention_gap([0, 1, 2], 1, 2, dim_head=5)
    with pytest.raises(ValueError, match="seq_len"):
        position_schemes(seq_len=0)
