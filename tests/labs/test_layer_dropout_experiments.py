import math

import numpy as np
import pytest
import torch
from torch import nn

from xtlab.labs.layer_dropout.experiments import (
    block_presence_matrix,
    check_skip_gradient_link,
    parameters_of_blocks,
    run_layer_dropout,
    skip_statistics,
    steps_without_gradient,
    wilson_interval,
)
from xtlab.labs.layer_dropout.generalization import compare_layer_dropout


@pytest.mark.parametrize(
    ("successes", "trials", "low", "high"),
    [(0, 10, 0.0, 0.2775), (5, 10, 0.2366, 0.7634), (10, 10, 0.7225, 1.0), (50, 480, 0.0799, 0.1347)],
)
def test_wilson_interval_matches_reference_values(successes, trials, low, high):
    got_low, got_high = wilson_interval(successes, trials)
    assert got_low == pytest.approx(low, abs=1e-4) and got_high == pytest.approx(high, abs=1e-4)


def test_wilson_interval_widens_with_confidence():
    narrow, wide = wilson_interval(30, 100, 0.8), wilson_interval(30, 100, 0.99)
    assert wide[0] < narrow[0] < 0.3 < narrow[1] < wide[1]


@pytest.mark.parametrize(
    ("args", "error", "named"),
    [((5, 0), ValueError, "0"), ((11, 10), ValueError, "11"), ((-1, 10), ValueError, "-1"),
     ((1.5, 10), TypeError, "float"), ((1, 10, 1.0), ValueError, "1.0")],
)
def test_wilson_interval_rejects_bad_input(args, error, named):
    with pytest.raises(error, match=named):
        wilson_interval(*args)


def test_skipped_blocks_are_exactly_the_blocks_without_gradient():
    run = run_layer_dropout(layer_dropout=0.3, depth=2, steps=20, seed=1)
    link = check_skip_gradient_link(run)
    assert link.holds and link.steps_checked == 20 and link.steps_with_skips > 0
    present, labels = block_presence_matrix(run)
    assert present.shape == (20, 4) and labels == [f"attn_layers.layers.{i}" for i in range(4)]
    for step, skipped in enumerate(run.reported_skips):
        assert [labels[j] for j in np.flatnonzero(~present[step])] == list(skipped)


def test_same_seed_same_skips_other_seed_other_skips():
    first = run_layer_dropout(layer_dropout=0.3, depth=2, steps=20, seed=1)
    assert run_layer_dropout(layer_dropout=0.3, depth=2, steps=20, seed=1) is first  # memoised
    assert run_layer_dropout.__module__ == "xtlab.labs.layer_dropout.experiments"
    assert run_layer_dropout(layer_dropout=0.3, depth=2, steps=20, seed=2).reported_skips != first.reported_skips


def test_statistics_of_a_train_run():
    run = run_layer_dropout(layer_dropout=0.5, depth=2, steps=40, seed=0)
    stats = skip_statistics(run)
    present, _ = block_presence_matrix(run)
    assert stats.block_steps == 160 and stats.skipped_block_steps == int((~present).sum())
    assert stats.all_blocks_expected == pytest.approx(0.5**4)
    assert stats.p_in_interval and stats.losses_finite
    assert stats.params_without_gradient > 0


def test_eval_mode_skips_nothing_and_neuron_dropout_keeps_every_gradient():
    eval_stats = skip_statistics(run_layer_dropout(layer_dropout=0.5, depth=2, steps=10, mode="eval"))
    assert eval_stats.skipped_block_steps == 0 and eval_stats.params_without_gradient == 0
    assert eval_stats.layer_dropout == 0.0 and eval_stats.all_blocks_expected == 1.0
    neuron = skip_statistics(run_layer_dropout(layer_dropout=0.0, depth=2, steps=10, neuron_dropout=0.4))
    assert neuron.params_without_gradient == 0 and neuron.all_blocks_steps == 10


def test_parameters_of_blocks_does_not_confuse_block_1_with_block_10():
    names = ["attn_layers.layers.1.fn.w", "attn_layers.layers.10.fn.w", "token_emb.weight"]
    assert parameters_of_blocks(names, ("attn_layers.layers.1",)) == {"attn_layers.layers.1.fn.w"}


@pytest.mark.parametrize(
    ("kwargs", "error", "named"),
    [({"layer_dropout": 1.0}, ValueError, "1.0"), ({"layer_dropout": "0.1"}, TypeError, "str"),
     ({"depth": 0}, ValueError, "0"), ({"steps": 2.5}, TypeError, "float"), ({"seed": -1}, ValueError, "-1"),
     ({"mode": "test"}, ValueError, "test"), ({"neuron_dropout": -0.1}, ValueError, "-0.1")],
)
def test_run_rejects_bad_settings(kwargs, error, named):
    with pytest.raises(error, match=named):
        run_layer_dropout(**kwargs)


def test_compare_layer_dropout_returns_one_curve_per_p():
    comparison = compare_layer_dropout(layer_dropouts=(0.0, 0.5), steps=20, eval_every=10, eval_batches=1)
    assert [curve.layer_dropout for curve in comparison.curves] == [0.0, 0.5]
    for curve in comparison.curves:
        assert curve.eval_steps == (10, 20)
        assert all(math.isfinite(loss) for loss in curve.train_losses + curve.val_losses)
    with pytest.raises(ValueError, match="0.25"):
        comparison.curve(0.25)


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [({"layer_dropouts": (1.2,)}, "1.2"), ({"steps": 30, "eval_every": 20}, "30"), ({"train_tokens": 5}, "5"),
     ({"depth": 0}, "depth")],
)
def test_compare_rejects_bad_settings(kwargs, named):
    with pytest.raises(ValueError, match=named):
        compare_layer_dropout(**kwargs)


def test_lab_optimizer_is_fused_adamw_with_pytorch_decay():
    from xtlab.labs.layer_dropout.experiments import LEARNING_RATE, make_optimizer

    optimizer = make_optimizer(nn.Linear(2, 2))
    assert isinstance(optimizer, torch.optim.AdamW)
    group = optimizer.param_groups[0]
    assert group["fused"] is True and group["weight_decay"] == 0.01 and group["lr"] == LEARNING_RATE


def test_lab_optimizer_falls_back_to_foreach_on_a_device_without_fused_kernels():
    from xtlab.labs.layer_dropout.experiments import make_optimizer

    optimizer = make_optimizer(nn.Linear(2, 2, device="meta"))
    assert optimizer.param_groups[0]["foreach"] is True and not optimizer.param_groups[0]["fused"]


def test_lab_optimizer_matches_the_foreach_kernel_step_by_step():
    from xtlab.labs.layer_dropout.experiments import LEARNING_RATE, make_optimizer

    torch.manual_seed(0)
    fused_model = nn.Linear(8, 8)
    reference = nn.Linear(8, 8)
    reference.load_state_dict(fused_model.state_dict())
    fused = make_optimizer(fused_model)
    foreach = torch.optim.AdamW(reference.parameters(), lr=LEARNING_RATE, weight_decay=0.01, foreach=True)
    for _ in range(20):
        batch = torch.randn(4, 8)
        for model, optimizer in ((fused_model, fused), (reference, foreach)):
            optimizer.zero_grad(set_to_none=True)
            model(batch).square().mean().backward()
            optimizer.step()
    for got, expected in zip(fused_model.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)


def test_models_keep_the_lab_head_width_whatever_the_library_default():
    from xtlab.labs.layer_dropout.experiments import DIM, HEADS, build_model

    model = build_model(vocab_size=10, depth=1, layer_dropout=0.0)
    qkv = next(p for name, p in model.named_parameters() if "to_qkv" in name or "to_q." in name)
    assert qkv.shape[0] in (DIM, 3 * DIM)  # heads * (dim // heads) = dim per projection
    assert DIM % HEADS == 0


def test_steps_without_gradient_counts_steps_not_parameters():
    run = run_layer_dropout(layer_dropout=0.3, depth=2, steps=20, seed=1)
    present, labels = block_presence_matrix(run)
    attention_columns = [j for j, kind in enumerate(run.block_kinds) if kind == "attn"]
    expected = int((~present[:, attention_columns]).any(axis=1).sum())
    assert steps_without_gradient(run, "to_out.weight") == expected
    assert steps_without_gradient(run, "token_emb.weight") == 0
    with pytest.raises(ValueError, match="nothing"):
        steps_without_gradient(run, "nothing")
    with pytest.raises(TypeError, match="str"):
        steps_without_gradient("run", "to_out.weight")
