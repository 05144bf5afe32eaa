"""Lab 03, items 1-2: key positions and rotary scores by distance."""

import numpy as np
import pytest

from xtlab.labs.xl_rotary.position_panels import compare_rotary_scores, plot_key_positions, plot_rotary_scores
from xtlab.labs.xl_rotary.positions import key_positions, rotary_scores


def test_continuous_positions_for_two_memories_are_oldest_first():
    positions = key_positions(2, 4)
    assert positions.continuous_list == [-2, -1, 0, 1, 2, 3]
    assert positions.restart.tolist() == [0, 1, 0, 1, 2, 3]
    assert positions.is_memory.tolist() == [True, True, False, False, False, False]


def test_notebook_claims_about_order():
    positions = key_positions(2, 4)
    assert positions.strictly_increasing == {"continuous": True, "restart": False}
    assert [-1, -2, 0, 1, 2, 3] != positions.continuous_list  # the write-up's newest-first order


@pytest.mark.parametrize(("num_mems", "seq_len"), [(0, 1), (1, 1), (5, 3)])
def test_continuous_positions_always_step_by_one(num_mems, seq_len):
    positions = key_positions(num_mems, seq_len)
    assert positions.continuous[0] == -num_mems and positions.continuous[-1] == seq_len - 1
    assert positions.strictly_increasing["continuous"]


def test_continuous_scores_lie_on_the_distance_curve():
    scores = rotary_scores(4, 8, "continuous")
    assert scores.max_error < 1e-9
    assert scores.memory_pairs_misplaced == 0 and scores.memory_keys_seen_in_future == 0
    assert np.array_equal(scores.true_distance, scores.assigned_distance)


def test_restarted_scores_misplace_every_memory_pair_and_some_in_the_future():
    scores = rotary_scores(4, 8, "restart")
    memory_pairs = int(scores.is_memory.sum())
    assert memory_pairs == 32  # every query may see all 4 memories
    assert scores.memory_pairs_misplaced == memory_pairs
    assert scores.memory_keys_seen_in_future == 6  # query 0 sees keys at 1..3, query 1 at 2..3, query 2 at 3
    assert scores.max_error > 1.0


def test_causal_pairs_are_counted_once():
    scores = rotary_scores(2, 3)
    assert len(scores.score) == 2 * 3 + 3 * 4 // 2  # every memory, plus the causal triangle


@pytest.mark.parametrize(("kwargs", "error", "text"), [
    ({"num_mems": -1, "seq_len": 4}, ValueError, "-1"),
    ({"num_mems": 2, "seq_len": 0}, ValueError, "0"),
    ({"num_mems": 2.5, "seq_len": 4}, TypeError, "2.5"),
])
def test_key_positions_rejects_bad_sizes(kwargs, error, text):
    with pytest.raises(error, match=text):
        key_positions(**kwargs)


def test_rotary_scores_rejects_unknown_mode():
    with pytest.raises(ValueError, match="sideways"):
        rotary_scores(2, 3, "sideways")


def test_plots_return_figures_with_expected_axes():
    assert len(plot_key_positions(key_positions(3, 5)).axes) == 2
    assert len(plot_rotary_scores(compare_rotary_scores(3, 5)).axes) == 2
