"""XL recurrence: a segmented pass with memories equals one full pass, and the teaching bugs break it."""

import pytest
import torch

from xtlab import Decoder, TransformerWrapper


def decoder_lm(depth=2, heads=2, dtype=torch.float64, max_mem_len=64, **layer_kw):
    torch.manual_seed(0)
    layers = Decoder(32, depth, heads, rotary_pos_emb=True, **layer_kw)
    return TransformerWrapper(30, 64, layers, max_mem_len=max_mem_len).to(dtype).eval()


def segmented(model, x, seg):
    mems, outs = None, []
    for start in range(0, x.shape[1], seg):
        out, mems = model(x[:, start:start + seg], mems=mems, return_mems=True)
        outs.append(out)
    return torch.cat(outs, dim=1)


def max_gap(model, seg, n=24):
    x = torch.randint(0, 30, (2, n), generator=torch.Generator().manual_seed(1))
    return (segmented(model, x, seg) - model(x)).abs().max().item()


@pytest.mark.parametrize("depth, heads, seg", [(1, 1, 4), (2, 2, 6), (3, 4, 8), (2, 2, 5)])
def test_xl_invariant_float64(depth, heads, seg):
    assert max_gap(decoder_lm(depth, heads), seg) < 1e-9


def test_xl_invariant_float32():
    assert max_gap(decoder_lm(2, 2, dtype=torch.float32), 8) < 1e-4


def test_learned_memory_kv_see_absolute_query_positions():
    # mem_k is unrotated while queries are rotated by their absolute position in the segment, so with
    # attn_num_mem_kv a segment's output depends on where it starts: the XL invariant needs attn_num_mem_kv=0.
    assert max_gap(decoder_lm(2, 2, attn_num_mem_kv=3), 8) > 1e-3


@pytest.mark.parametrize("bug", [{"mem_positions": "restart"}, {"mem_record": "residual"}])
def test_teaching_bugs_break_the_invariant(bug):
    assert max_gap(decoder_lm(2, 2, **bug), 8) > 1e-3


def test_mems_are_detached_and_truncated():
    model = decoder_lm(max_mem_len=5).train()
    _, mems = model(torch.randint(0, 30, (2, 8)), return_mems=True)
    assert len(mems) == 2
    assert all(m.shape == (2, 5, 32) and not m.requires_grad for m in mems)


def test_zero_memories_equal_no_memories_with_mask():
    model = decoder_lm()
    x = torch.randint(0, 30, (2, 6))
    zeros = [torch.zeros(2, 4, 32, dtype=torch.float64) for _ in range(2)]
    torch.testing.assert_close(model(x, mems=zeros), model(x), atol=1e-10, rtol=0)
    explicit = torch.zeros(2, 4, dtype=torch.bool)
    torch.testing.assert_close(model(x, mems=[torch.randn_like(z) for z in zeros], mem_masks=explicit), model(x),
                               atol=1e-10, rtol=0)


def test_zero_memories_differ_without_mask():
    model = decoder_lm(mask_empty_mems=False)
    x = torch.randint(0, 30, (2, 6))
    zeros = [torch.zeros(2, 4, 32, dtype=torch.float64) for _ in range(2)]
    assert (model(x, mems=zeros) - model(x)).abs().max() > 1e-3


def test_partial_mem_mask_hides_exactly_the_masked_slots():
    model = decoder_lm()
    x = torch.randint(0, 30, (1, 6))
    mems = [torch.randn(1, 4, 32, dtype=torch.float64) for _ in range(2)]
    keep_last_two = torch.tensor([[False, False, True, True]])
    trimmed = [m[:, 2:] for m in mems]
    torch.testing.assert_close(model(x, mems=mems, mem_masks=keep_last_two), model(x, mems=trimmed),
                               atol=1e-10, rtol=0)


def test_attention_weights_reproduce_the_layer_output():
    model = decoder_lm(2, 2, attn_num_mem_kv=2)
    attn = model.attn_layers.layers[0].fn
    x = torch.randn(1, 5, 32, dtype=torch.float64)
    mem = torch.randn(1, 3, 32, dtype=torch.float64)
    key_mask = torch.tensor([[True, False, True] + [True] * 5])
    weights = attn.attention_weights(x, mem, key_mask)
    assert weights.shape == (1, 2, 5, 2 + 3 + 5)
    assert torch.all(weights[..., 2 + 1] == 0)  # the masked memory slot gets no weight
    _, _, v = attn.project(x, mem)
    rebuilt = attn.to_out((weights @ v).transpose(1, 2).reshape(1, 5, attn.inner))  # inner = heads * dim_head
    torch.testing.assert_close(rebuilt, attn(x, mem, key_mask), atol=1e-10, rtol=0)
