import math
import re

import pytest

from xtlab.labs.layer_dropout.generalization import Spread, compare_layer_dropout, compare_over_seeds, describe_step


@pytest.fixture(scope="module")
def comparison():
    return compare_over_seeds(layer_dropouts=(0.0, 0.5), seeds=(0, 1), steps=20, eval_every=10, eval_batches=1)


def test_spread_of_known_numbers():
    spread = Spread((1.0, 2.0, 4.0))
    assert spread.mean == pytest.approx(7 / 3) and spread.std == pytest.approx(1.527525, abs=1e-6)
    assert (spread.low, spread.high) == (1.0, 4.0)
    assert str(spread) == "2.333 ± 1.528 (min 1.000, max 4.000)"
    assert math.isnan(Spread((1.0,)).std)


def test_each_seed_is_its_own_single_seed_comparison(comparison):
    assert comparison.eval_steps == (10, 20) and comparison.seeds == (0, 1)
    alone = compare_layer_dropout((0.0, 0.5), steps=20, eval_every=10, eval_batches=1, seed=1)
    assert comparison.val_losses(0.5, 20).values[1] == alone.curve(0.5).val_losses[-1]
    assert comparison.train_losses(0.0, 10).values[1] == alone.curve(0.0).train_losses[0]
    assert comparison.val_losses(0.0, 20).values[0] != comparison.val_losses(0.0, 20).values[1]


def test_paired_differences_and_counts(comparison):
    differences = comparison.val_differences(0.5, 20).values
    expected = [a - b for a, b in zip(comparison.val_losses(0.5, 20).values, comparison.val_losses(0.0, 20).values,
                                      strict=True)]
    assert list(differences) == expected
    assert comparison.seeds_helped(0.5, 20) == sum(d < 0 for d in expected)
    assert comparison.val_differences(0.0, 20).values == (0.0, 0.0) and comparison.seeds_helped(0.0, 20) == 0
    assert comparison.seeds_train_higher(0.0, 20) == 0
    gaps = comparison.gaps(0.5, 10).values
    assert gaps == tuple(c.val_losses[0] - c.train_losses[0] for c in comparison.curves(0.5))
    assert comparison.best_val_losses(0.5).values == tuple(min(c.val_losses) for c in comparison.curves(0.5))


def test_describe_step_names_every_number(comparison):
    text = describe_step(comparison, 20, 0.5)
    assert f"step 20, p = 0.0: validation {comparison.val_losses(0.0, 20)}" in text
    assert f"lower with p = 0.5 in {comparison.seeds_helped(0.5, 20)} of 2 seeds" in text
    with pytest.raises(ValueError, match="0.0"):
        describe_step(comparison, 20, 0.0)
    with pytest.raises(TypeError, match="dict"):
        describe_step({}, 20, 0.5)


def test_unmeasured_step_is_refused(comparison):
    with pytest.raises(ValueError, match="15"):
        comparison.val_losses(0.5, 15)


@pytest.mark.parametrize(("kwargs", "error", "named"), [
    ({"seeds": (0,)}, ValueError, "(0,)"), ({"seeds": (1, 1)}, ValueError, "(1, 1)"),
    ({"seeds": (0, -1)}, ValueError, "-1"), ({"seeds": [0, 1]}, ValueError, "[0, 1]"),
    ({"layer_dropouts": (0.1, 0.1)}, ValueError, "(0.1, 0.1)"),
    ({"layer_dropouts": (0.0, "0.1")}, TypeError, "str"),
    ({"layer_dropouts": (0.0, 1.0)}, ValueError, "1.0"),
])
def test_compare_over_seeds_rejects_bad_settings(kwargs, error, named):
    settings = {"steps": 10, "eval_every": 10, "eval_batches": 1} | kwargs
    with pytest.raises(error, match=re.escape(named)):
        compare_over_seeds(**settings)
