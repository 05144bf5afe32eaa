"""Lab 03 exercises beyond the shared checks: the invariant decides, so a shifted numbering passes and a mask or an
update that only looks right fails."""

import torch

from xtlab.course import NOT_YET, PASS, TRY_AGAIN
from xtlab.labs.xl_rotary import EXERCISES


def test_a_uniformly_shifted_numbering_passes_and_says_so():
    verdict = EXERCISES.check("positions_with_memory", lambda M, T: list(range(10 - M, 10 + T)))
    assert verdict.status == PASS and "shifted by [10]" in str(verdict)
    assert "arange(-M, T)" in str(EXERCISES.check("positions_with_memory", lambda M, T: torch.arange(-M, T)))


def test_positions_of_the_wrong_length_are_named():
    verdict = EXERCISES.check("positions_with_memory", lambda M, T: list(range(T)))
    assert verdict.status == TRY_AGAIN and "M + T" in str(verdict)


def test_a_mask_that_is_right_on_values_but_float_is_refused():
    verdict = EXERCISES.check("memory_mask", lambda mem: (mem.abs().amax(dim=-1) > 0).float())
    assert verdict.status == TRY_AGAIN and "bool tensor of shape (b, M)" in str(verdict)


def test_update_that_clones_instead_of_detaching_is_caught():
    def cloned(mem, hidden, max_mem_len):
        both = hidden if mem is None else torch.cat((mem, hidden), dim=1)
        return both[:, -max_mem_len:].clone()

    verdict = EXERCISES.check("update_memory", cloned)
    assert verdict.status == TRY_AGAIN and "forgot detach" in str(verdict)


def test_update_stub_is_not_yet_and_checks_leave_grad_mode_alone():
    torch.set_grad_enabled(False)
    try:
        assert EXERCISES.check("update_memory", EXERCISES["update_memory"].reference).status == PASS
        assert not torch.is_grad_enabled()
    finally:
        torch.set_grad_enabled(True)

    def stub(mem, hidden, max_mem_len):
        raise NotImplementedError()

    assert EXERCISES.check("update_memory", stub).status == NOT_YET
