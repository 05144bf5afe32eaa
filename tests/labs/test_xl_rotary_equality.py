"""Lab 03, items 3-4: the segmented-vs-full proof and empty memories (CPU, float64)."""

import pytest
import torch

from xtlab.labs.xl_rotary.equality import (
    CONFIGS,
    EXACT_TOLERANCE,
    attention_weights,
    build_xl_model,
    empty_memories,
    example_tokens,
    segmented_vs_full,
)


def test_teaching_switches_do_not_change_the_weights():
    reference = build_xl_model().state_dict()
    for config in CONFIGS.values():
        other = build_xl_model(**config).state_dict()
        assert all(torch.equal(reference[k], other[k]) for k in reference)


def test_correct_segmented_pass_equals_full_pass():
    proof = segmented_vs_full("correct")
    assert proof.equal and proof.worst < EXACT_TOLERANCE
    assert proof.max_abs_diff.shape == (4,)


@pytest.mark.parametrize("config", ["restarted positions", "residual recorded"])
def test_each_bug_breaks_equality_from_the_second_segment(config):
    proof = segmented_vs_full(config)
    assert proof.max_abs_diff[0] < EXACT_TOLERANCE  # no memory is used yet
    assert (proof.max_abs_diff[1:] > 1e-3).all()
    assert not proof.equal


def test_notebook_proof_table():
    printed = {  # what the notebook prints, 2 significant digits, for mems=None then the zero start
        False: {"correct": None, "restarted positions": "0.081", "residual recorded": "0.086",
                "zero memories unmasked": None},
        True: {"correct": None, "restarted positions": "0.1", "residual recorded": "0.086",
               "zero memories unmasked": "0.49"},
    }
    for start, rows in printed.items():
        for config, shown in rows.items():
            proof = segmented_vs_full(config, start_from_zeros=start)
            assert proof.equal == (shown is None)
            if shown is not None:
                assert f"{proof.worst:.2g}" == shown


def test_unmasked_zero_start_breaks_even_the_first_segment():
    proof = segmented_vs_full("zero memories unmasked", start_from_zeros=True)
    assert proof.max_abs_diff[0] > 1e-3


def test_short_memory_is_a_sliding_window_not_the_full_pass():
    proof = segmented_vs_full("correct", max_mem_len=8)
    assert proof.max_abs_diff[:2].max() < EXACT_TOLERANCE  # a memory of 8 still holds all of segment 1
    assert not proof.equal


def test_float32_proof_tolerance_used_by_the_notebook():
    assert segmented_vs_full("correct", dtype=torch.float32).worst < 1e-4
    assert segmented_vs_full("restarted positions", dtype=torch.float32).worst >= 1e-4


def test_empty_memories_mask_on_matches_none_and_mask_off_does_not():
    result = empty_memories(4, 8)
    assert result.max_abs_diff["mask on"] < 1e-12
    assert f"{result.max_abs_diff['mask off']:.2g}" == "0.4"
    assert result.memory_weight["mask on"] == 0.0
    assert f"{result.memory_weight['mask off']:.2g}" == "0.48"
    assert result.weights_reproduce_layer
    assert result.weights["none"].shape == (8, 8) and result.weights["mask on"].shape == (8, 12)
    assert (result.weights["mask on"][:, :4] == 0).all()
    assert result.weights["mask off"][:, :4].min() > 0


def test_attention_weights_rows_sum_to_one_and_are_causal():
    model = build_xl_model()
    tokens = example_tokens(6)
    mems = [torch.randn(1, 3, 32, dtype=torch.float64) for _ in range(2)]
    with torch.no_grad():
        weights, reproduces = attention_weights(model, tokens, mems)
    assert reproduces
    assert torch.allclose(weights.sum(-1), torch.ones(1, 2, 6, dtype=torch.float64))
    current = weights[..., 3:]
    assert (current.triu(diagonal=1) == 0).all()


@pytest.mark.parametrize(("kwargs", "error", "text"), [
    ({"config": "everything"}, ValueError, "everything"),
    ({"segment_len": 0}, ValueError, "0"),
    ({"num_segments": -2}, ValueError, "-2"),
    ({"max_mem_len": 0}, ValueError, "0"),
])
def test_segmented_vs_full_rejects_bad_input(kwargs, error, text):
    with pytest.raises(error, match=text):
        segmented_vs_full(**kwargs)


def test_empty_memories_rejects_no_slots():
    with pytest.raises(ValueError, match="0"):
        empty_memories(num_mems=0)
