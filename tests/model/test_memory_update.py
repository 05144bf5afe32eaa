"""The XL memory update keeps the last ``max_mem_len`` positions of ``[mem ; recorded]``, detached; at
``max_mem_len=0`` it keeps none (the slice ``[:, -max_mem_len:]`` would keep them all, since ``-0 == 0``)."""

import pytest
import torch

from xtlab import Decoder
from xtlab.model.attention_layers import update_memory


def states(b, n, dim=4, seed=0):
    return torch.randn(b, n, dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("max_mem_len", [0, 1, 3, 5, 8, 20])
@pytest.mark.parametrize("with_mem", [False, True])
def test_keeps_the_last_positions(max_mem_len, with_mem):
    mem, recorded = (states(2, 3, seed=1) if with_mem else None), states(2, 5, seed=2)
    both = recorded if mem is None else torch.cat((mem, recorded), dim=1)
    kept = min(max_mem_len, both.shape[1])
    new = update_memory(mem, recorded.requires_grad_(), max_mem_len)
    assert new.shape == (2, kept, 4) and not new.requires_grad
    torch.testing.assert_close(new, both[:, both.shape[1] - kept:].detach(), rtol=0, atol=0)


def test_zero_length_keeps_nothing():
    assert update_memory(states(1, 4), states(1, 6), 0).shape == (1, 0, 4)
    with pytest.raises(ValueError, match="max_mem_len"):
        update_memory(None, states(1, 2), -1)


def test_stack_at_zero_length_returns_empty_memories_that_change_nothing():
    torch.manual_seed(0)
    stack = Decoder(16, 2, 2, rotary_pos_emb=True, attn_dim_head=8).double().eval()
    x = states(2, 5, dim=16)
    out, mems = stack(x, mems=[states(2, 3, dim=16, seed=k) for k in range(2)], return_mems=True, max_mem_len=0)
    assert [tuple(m.shape) for m in mems] == [(2, 0, 16), (2, 0, 16)]
    again, _ = stack(x, mems=mems, return_mems=True, max_mem_len=0)
    torch.testing.assert_close(again, stack(x), rtol=0, atol=0)
