import random

import pytest
import torch
import x_transformers

from xtlab.labs.layer_dropout.experiments import check_skip_gradient_link, skip_statistics, steps_without_gradient
from xtlab.labs.layer_dropout.xtransformers_twin import (
    XT_DEFAULT_DIM_HEAD,
    build_xtransformers_model,
    parameter_count,
    run_xtransformers_layer_dropout,
    seeding_outcomes,
    twin_sizes,
    xtransformers_draws_with_python_random,
    xtransformers_skip_line,
)


@pytest.fixture(scope="module")
def xt_run():
    return run_xtransformers_layer_dropout(layer_dropout=0.4, depth=2, steps=15, seed=2)


def test_sizes_match_at_equal_settings_and_leave_global_state_alone():
    python_state, torch_state = random.getstate(), torch.get_rng_state()
    sizes = twin_sizes(2)
    assert random.getstate() == python_state and torch.equal(torch.get_rng_state(), torch_state)
    assert sizes.dim_head == 16 and XT_DEFAULT_DIM_HEAD == 64
    assert sizes.xtlab > 0 and sizes.x_transformers > 0
    assert abs(sizes.xtlab - sizes.x_transformers) <= 0.02 * sizes.x_transformers


def test_model_is_x_transformers_at_the_lab_size():
    model = build_xtransformers_model(20, 2, 0.1)
    assert isinstance(model, x_transformers.TransformerWrapper)
    assert model.attn_layers.layer_types == ("a", "f", "a", "f")
    assert parameter_count(model) == sum(p.numel() for p in model.parameters())
    with pytest.raises(TypeError, match="str"):
        parameter_count("model")


def test_replayed_python_draws_are_exactly_the_blocks_without_gradient(xt_run):
    assert xt_run.library == "x-transformers" and xt_run.block_kinds == ("attn", "ff", "attn", "ff")
    link = check_skip_gradient_link(xt_run)
    assert link.holds and link.steps_with_skips > 0
    assert skip_statistics(xt_run).losses_finite
    assert 0 < steps_without_gradient(xt_run, "to_q.weight") < xt_run.steps
    with pytest.raises(ValueError, match="to_qkv"):
        steps_without_gradient(xt_run, "to_qkv.weight")


def test_a_wrong_replay_would_be_caught(xt_run):
    from dataclasses import replace

    shifted = replace(xt_run, reported_skips=xt_run.reported_skips[1:] + xt_run.reported_skips[:1])
    assert not check_skip_gradient_link(shifted).holds


def test_torch_seed_reproduces_xtlab_but_not_xtransformers():
    python_state = random.getstate()
    outcomes = {(o.library, o.seeding): o for o in seeding_outcomes(layer_dropout=0.5, depth=2, passes=12, seed=1)}
    assert random.getstate() == python_state
    assert outcomes[("xtlab", "torch.manual_seed(1)")].reproduced
    assert outcomes[("x-transformers", "random.seed(1)")].reproduced
    assert not outcomes[("x-transformers", "torch.manual_seed(1)")].reproduced
    assert all(o.passes == 12 and 0 <= o.same_passes <= 12 for o in outcomes.values())


def test_the_skip_line_is_read_from_the_installed_source():
    line = xtransformers_skip_line()
    assert "random()" in line.text and "layer_dropout" in line.text
    assert line.path.startswith("x_transformers/") and line.number > 0 and str(line).startswith(line.path)
    assert xtransformers_draws_with_python_random()


@pytest.mark.parametrize(("kwargs", "error", "named"), [
    ({"layer_dropout": 1.0}, ValueError, "1.0"), ({"depth": "2"}, TypeError, "depth"),
    ({"steps": 0}, ValueError, "steps"), ({"seed": -1}, ValueError, "-1"),
])
def test_bad_settings_are_refused(kwargs, error, named):
    with pytest.raises(error, match=named):
        run_xtransformers_layer_dropout(**kwargs)
    if "steps" not in kwargs:
        with pytest.raises(error, match=named):
            seeding_outcomes(**kwargs)
