"""Lab 03, memory recording: the four designs under the invariant, xtlab's forward mirrored, x-transformers live."""

import inspect

import pytest
import torch

from xtlab.labs.xl_rotary.models import DIM, EXACT_TOLERANCE, HEADS, build_xl_model, example_tokens, size_kwargs
from xtlab.labs.xl_rotary.recording import DESIGNS, all_designs, forward_with_design, segmented_vs_full
from xtlab.labs.xl_rotary.xtransformers_check import xtransformers_segmented_vs_full, xtransformers_zero_memories
from xtlab.model import AttentionLayers, Decoder, TransformerWrapper

VALID = ("record before the norm, normalise at use", "record after the norm, use as is")
BROKEN = ("record after the norm, normalise again at use", "record before the norm, use as is")


def test_xtlab_design_is_exactly_the_library_forward():
    model = build_xl_model()
    tokens = example_tokens(12)
    with torch.no_grad():
        lib_mems = mine = None
        for part in tokens.split(6, dim=1):
            lib_logits, lib_mems = model(part, mems=lib_mems, return_mems=True)
            my_logits, mine = forward_with_design(model, part, mine, "record after the norm, use as is")
            assert torch.equal(lib_logits, my_logits)
            assert all(torch.equal(a, b) for a, b in zip(lib_mems, mine, strict=True))


def test_valid_designs_keep_the_invariant_and_broken_ones_break_from_segment_two():
    proofs = {p.label: p for p in all_designs()}
    assert set(proofs) == set(DESIGNS) == set(VALID) | set(BROKEN)
    for label in VALID:
        assert proofs[label].equal and proofs[label].worst < EXACT_TOLERANCE
    for label in BROKEN:
        assert proofs[label].max_abs_diff[0] < EXACT_TOLERANCE  # no memory is used in segment 1
        assert (proofs[label].max_abs_diff[1:] > 1e-2).all() and not proofs[label].equal


def test_with_unit_gains_normalising_twice_is_small_but_still_not_equal():
    twice = segmented_vs_full("record after the norm, normalise again at use", unit_gains=True)
    trained = segmented_vs_full("record after the norm, normalise again at use")
    assert EXACT_TOLERANCE < twice.worst < 1e-3 < trained.worst


def test_norm_gains_are_drawn_around_one_whatever_the_gain_storage():
    gains = torch.cat([block.norm.gain().detach() for block in build_xl_model().attn_layers.layers])
    assert 0.8 < gains.mean() < 1.2 and gains.std() > 0.3
    unit = torch.cat([block.norm.gain().detach() for block in build_xl_model(unit_gains=True).attn_layers.layers])
    assert torch.equal(unit, torch.ones_like(unit))


def test_short_memory_and_restarted_positions_break_the_invariant():
    assert not segmented_vs_full(max_mem_len=8).equal  # a sliding window forgets what the full pass sees
    restarted = segmented_vs_full(mem_positions="restart")
    assert restarted.max_abs_diff[0] < EXACT_TOLERANCE and restarted.worst > 1e-2


def test_x_transformers_design_keeps_the_invariant_and_zero_memories_need_a_mask():
    proof = xtransformers_segmented_vs_full()
    assert proof.equal and proof.num_params > 0 and proof.version[0].isdigit()
    zero = xtransformers_zero_memories()
    assert zero["no mem_masks"] > 1e-2 and zero["all-False mem_masks"] < EXACT_TOLERANCE


def test_models_stay_small_when_the_library_takes_attn_dim_head():
    attn = build_xl_model().attn_layers.layers[0].fn
    if "attn_dim_head" in inspect.signature(AttentionLayers.__init__).parameters:
        assert size_kwargs() == {"attn_dim_head": DIM // HEADS}
    assert attn.dim_head == DIM // HEADS


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="no such design"):
        segmented_vs_full("no such design")
    with pytest.raises(ValueError, match="segment_len"):
        segmented_vs_full(segment_len=0)
    absolute = TransformerWrapper(64, 32, Decoder(DIM, 1, HEADS, **size_kwargs()), max_mem_len=8)
    with pytest.raises(ValueError, match="rotary"):
        forward_with_design(absolute, example_tokens(4), None, VALID[0])
    with pytest.raises(ValueError, match="length"):
        example_tokens(0)


def test_forward_with_design_names_a_bad_model_or_bad_tokens():
    with pytest.raises(TypeError, match="model"):
        forward_with_design("not a model", example_tokens(4), None, VALID[0])
    with pytest.raises((TypeError, ValueError), match="tokens"):
        forward_with_design(build_xl_model(), torch.zeros(1, 4), None, VALID[0])
