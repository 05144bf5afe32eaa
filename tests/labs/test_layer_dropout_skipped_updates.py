import pytest

from xtlab.labs.layer_dropout.skipped_updates import SkippedBlockStep, SkippedUpdates, skipped_block_updates


@pytest.fixture(scope="module")
def to_none():
    return skipped_block_updates(set_to_none=True, weight_decay=0.01, layer_dropout=0.5, depth=1, steps=12, seed=3)


@pytest.fixture(scope="module")
def to_zeros():
    return skipped_block_updates(set_to_none=False, weight_decay=0.01, layer_dropout=0.5, depth=1, steps=12, seed=3)


def test_none_grads_leave_skipped_blocks_exactly_unchanged(to_none):
    assert to_none.skipped and to_none.count("none") == len(to_none.skipped)
    assert to_none.moved("none") == 0 and to_none.max_change("none") == 0.0
    assert to_none.max_change_running > 0


def test_zero_grads_move_skipped_blocks_through_momentum_and_decay(to_zeros, to_none):
    assert [(s.step, s.block) for s in to_zeros.skipped] == [(s.step, s.block) for s in to_none.skipped]  # same skips
    assert to_zeros.count("zeros") > 0 and to_zeros.moved("zeros") == to_zeros.count("zeros")
    # before a block ever got a gradient, set_to_none=False has nothing to zero: its grad is still None
    skipped_at = {(item.step, item.block) for item in to_zeros.skipped}
    for item in to_zeros.skipped:
        never_ran = all((step, item.block) in skipped_at for step in range(item.step))
        assert (item.grad == "none") == never_ran
        assert item.moved == (item.grad == "zeros")


def test_momentum_alone_moves_a_zero_grad_block():
    no_decay = skipped_block_updates(set_to_none=False, weight_decay=0.0, layer_dropout=0.5, depth=1, steps=12, seed=3)
    assert no_decay.moved("zeros") == no_decay.count("zeros") > 0


def test_record_helpers():
    item = SkippedBlockStep(3, "attn_layers.layers.1", "zeros", 0.5)
    assert item.moved and not SkippedBlockStep(3, "b", "none", 0.0).moved
    result = SkippedUpdates(False, 0.0, 0.5, 4, (item,), 1.0)
    assert (result.count("zeros"), result.moved("zeros"), result.max_change("none")) == (1, 1, 0.0)


@pytest.mark.parametrize(("kwargs", "error", "named"), [
    ({"set_to_none": "yes"}, TypeError, "yes"), ({"weight_decay": -1.0}, ValueError, "-1.0"),
    ({"layer_dropout": 1.5}, ValueError, "1.5"), ({"depth": 0}, ValueError, "depth"),
    ({"steps": 2.0}, TypeError, "steps"), ({"seed": -2}, ValueError, "-2"),
])
def test_bad_settings_are_refused(kwargs, error, named):
    with pytest.raises(error, match=named):
        skipped_block_updates(**kwargs)
