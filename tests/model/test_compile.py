"""xtlab's models trace into one torch.compile graph: a graph break would split every step in two (and, for a
value read back, wait for the device), which costs the fused kernels the GPU benchmark's compile option is for.

Backend aot_eager: it traces forward and backward as inductor does, without inductor's C++ build (~30 s here).
"""

from __future__ import annotations

import pytest
import torch

import xtlab


def fresh_compile(model):
    torch._dynamo.reset()
    return torch.compile(model, fullgraph=True, backend="aot_eager")


def test_the_benchmark_decoder_compiles_whole_and_matches_eager():
    torch.manual_seed(0)
    model = xtlab.TransformerWrapper(64, 32, xtlab.Decoder(dim=32, depth=2, heads=2, rotary_pos_emb=True)).train()
    tokens = torch.randint(0, 64, (2, 32))
    compiled = fresh_compile(model)
    out = compiled(tokens)  # fullgraph=True: any graph break raises here
    out.square().mean().backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters()}
    model.zero_grad(set_to_none=True)
    expected = model(tokens)
    expected.square().mean().backward()
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    for name, p in model.named_parameters():
        torch.testing.assert_close(grads[name], p.grad, rtol=1e-4, atol=1e-6, msg=name)


def test_xl_segments_compile_whole():
    torch.manual_seed(0)
    model = xtlab.TransformerWrapper(64, 16, xtlab.Decoder(dim=32, depth=2, heads=2, rotary_pos_emb=True),
                                     max_mem_len=16).train()
    compiled = fresh_compile(model)
    tokens = torch.randint(0, 64, (2, 2, 16))
    mems = expected_mems = None
    for segment in tokens:
        out, mems = compiled(segment, mems=mems, return_mems=True)
        expected, expected_mems = model(segment, mems=expected_mems, return_mems=True)
        torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


def test_an_id_out_of_range_is_refused_eager_and_compiled():
    """The range check is left out only while compiling: eager keeps its message, and compiled the embedding's
    own index check refuses the id (inductor on the CPU raises a RuntimeError "index out of bounds" there)."""
    model = xtlab.TransformerWrapper(64, 8, xtlab.Decoder(dim=32, depth=1, heads=2))
    with pytest.raises(ValueError, match="token id 64 is out of range"):
        model(torch.tensor([[1, 64]]))
    with pytest.raises(IndexError, match="index out of range"):
        fresh_compile(model)(torch.tensor([[1, 64]]))
