"""Lab 03, empty memories: zero slots need a mask, and the mask must decide per slot."""

import pytest
import torch

from xtlab.labs.xl_rotary.memory_masks import MASK_ROWS, MASK_RULES, empty_memories, mask_rows_gap, slot_mask
from xtlab.labs.xl_rotary.models import EXACT_TOLERANCE

FRESH, CONTINUING, HALF = MASK_ROWS


def test_zero_memories_equal_mems_none_only_with_the_mask():
    result = empty_memories(num_mems=4, seq_len=8)
    assert result.max_abs_diff["mask on"] < EXACT_TOLERANCE and result.max_abs_diff["mask off"] > 0.1
    assert result.memory_weight["mask on"] == 0 and 0.1 < result.memory_weight["mask off"] < 1
    assert result.weights_reproduce_layer
    assert result.weights["mask off"].shape == (8, 12) and result.weights["none"].shape == (8, 8)


def test_only_a_per_slot_mask_matches_every_row():
    gaps = {rule: mask_rows_gap(mask) for rule, mask in MASK_RULES.items()}
    per_slot, whole, none = gaps.values()
    assert all(gap < EXACT_TOLERANCE for gap in per_slot.values())
    for rule in (whole, none):
        assert rule[CONTINUING] < EXACT_TOLERANCE and rule[FRESH] > 0.1 and rule[HALF] > 0.01


def test_slot_mask_is_per_slot():
    mem = torch.zeros(2, 3, 4)
    mem[1, 2, 0] = -1.0
    assert slot_mask(mem).tolist() == [[False, False, False], [False, False, True]]


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="num_mems"):
        empty_memories(num_mems=0)
    with pytest.raises(TypeError, match="memory_mask"):
        mask_rows_gap("not a function")
    with pytest.raises(ValueError, match="padding"):
        mask_rows_gap(slot_mask, num_mems=4, padding=4)
