"""Lab 02 consequences: drift after a path, AdamW on half-tied weights (the FSDP replay: test_weight_tying_fsdp)."""

import numpy as np
import pytest

from xtlab.labs.weight_tying.training import compare_half_tied_updates, drift_after_path


def test_untied_weights_drift_apart_and_tied_ones_do_not():
    untied = drift_after_path("naive", "meta_to_empty", steps=3)
    tied = drift_after_path("tied_linear", "meta_to_empty", steps=3)
    assert untied.distances[0] == 0.0 and untied.distances[-1] > 0.0  # equal values, separate memory, then drift
    assert np.all(tied.distances == 0.0)
    assert untied.verdict_after_training == "untied" and tied.verdict_after_training == "tied"


def test_drift_after_a_path_that_raises_reports_the_error():
    result = drift_after_path("naive", "safetensors", steps=2)
    assert result.verdict == "error" and "share memory" in result.error and result.distances.size == 0


def test_half_tied_adamw_steps_are_larger_and_weight_decay_applies_twice():
    # the notebook's call: the issue measured ~1.8x; here (Frobenius norm of the change) it is well above 1
    comparison = compare_half_tied_updates(steps=5, lr=1e-3, weight_decay=0.1)
    assert np.all(comparison.ratios > 1.3) and np.all(comparison.ratios < 2.2)
    assert comparison.decays_tied == pytest.approx(1.0, abs=0.01)
    assert comparison.decays_half_tied == pytest.approx(2.0, abs=0.01)


@pytest.mark.parametrize(("kwargs", "error", "bad"), [
    ({"steps": 0}, ValueError, "steps"), ({"lr": -1.0}, ValueError, "-1.0"), ({"steps": "x"}, TypeError, "'x'"),
    ({"weight_decay": -0.1}, ValueError, "-0.1"), ({"lr": 10.0, "weight_decay": 0.2}, ValueError, "10.0"),
])
def test_compare_half_tied_updates_rejects_bad_settings(kwargs, error, bad):
    with pytest.raises(error, match=bad):
        compare_half_tied_updates(**kwargs)


def test_drift_after_path_rejects_bad_steps():
    with pytest.raises(TypeError, match="'x'"):
        drift_after_path("naive", "as_built", steps="x")
