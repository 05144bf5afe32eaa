"""Lab 03 exercises beyond the shared checks: a mask that only looks right fails, numberings get the hint of
their own cause, and a check leaves the caller's grad mode alone."""

import pytest
import torch

from xtlab.course import NOT_YET, PASS, TRY_AGAIN
from xtlab.labs import xl_rotary as lab
from xtlab.labs.xl_rotary import EXERCISES, position_hint


def test_a_mask_that_is_right_on_values_but_float_is_refused():
    def float_mask(streams, num_layers, dim):
        mems, mask = lab.solution_batch_memories(streams, num_layers, dim)
        return mems, mask.float()

    verdict = EXERCISES.check("batch_memories", float_mask)
    assert verdict.status == TRY_AGAIN and "bool tensor (b, M)" in str(verdict)


def test_the_batch_wide_rule_moves_the_fresh_row_and_the_padded_one():
    gaps = lab.row_gaps()
    assert max(gaps["per-sample mask"]) < lab.EXACT_TOLERANCE
    wide = gaps["torch.any(mem) for the batch"]
    assert wide[0] > 0.1 and wide[1] > 0.1 and wide[2] < lab.EXACT_TOLERANCE


@pytest.mark.parametrize(("positions", "words"), [
    ([0, 0, 0, 1, 2], "several keys share one position"),       # every memory at 0: repeats, not an off-by-one
    ([-1, -1, 0, 1, 2], "several keys share one position"),
    ([-1, 0, 0, 1, 2], "a memory and a current token share a position"),
    ([0, 1, 0, 1, 2], "overlay"),
    ([-1, -2, 0, 1, 2], "newest-first"),
    ([-3, -2, 0, 1, 2], "two steps before"),
])
def test_each_wrong_numbering_gets_the_hint_of_its_cause(positions, words):
    assert words in position_hint(positions, 2, 3)


def test_checks_leave_grad_mode_alone_and_the_stub_is_not_yet():
    torch.set_grad_enabled(False)
    try:
        assert EXERCISES.check("segmented_pass", EXERCISES["segmented_pass"].reference).status == PASS
        assert not torch.is_grad_enabled()
    finally:
        torch.set_grad_enabled(True)

    def stub(run_segment, tokens, segment_len, max_mem_len):
        raise NotImplementedError()

    assert EXERCISES.check("segmented_pass", stub).status == NOT_YET
