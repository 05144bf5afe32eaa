"""Lab 04 training experiments: decay traces and unit-offset gains, and the claims the notebook prints."""

import numpy as np
import pytest

from xtlab.labs.optimizer_groups.training import (
    GROUPINGS,
    MEMORY_TOKENS,
    NORM_GAIN,
    gains_under_strong_decay,
    norms_under_groupings,
)


def test_norm_traces_have_one_value_per_step_and_match_the_notebook_claims():
    trace = norms_under_groupings(weight_decay=1.0, steps=60, lr=1e-2, device="cpu")
    assert set(trace.norms) == set(GROUPINGS)
    assert trace.norms["by type"][MEMORY_TOKENS].shape == (61,)
    assert trace.losses["by ndim"].shape == (60,)
    assert abs(trace.ratio("by type", MEMORY_TOKENS) - 1) < 0.1
    assert trace.ratio("by ndim", MEMORY_TOKENS) < 2 / 3
    assert trace.ratio("decay everything", NORM_GAIN) < trace.ratio("by type", NORM_GAIN) - 0.2
    # all groupings start from the same model
    starts = {float(trace.norms[g][MEMORY_TOKENS][0]) for g in GROUPINGS}
    assert len(starts) == 1


def test_no_decay_means_the_groupings_train_identically():
    trace = norms_under_groupings(weight_decay=0.0, steps=5, lr=1e-2, device="cpu")
    np.testing.assert_allclose(trace.norms["by type"][MEMORY_TOKENS], trace.norms["by ndim"][MEMORY_TOKENS],
                               rtol=1e-5)


def test_unit_offset_gain_stays_near_identity_under_strong_decay():
    gains = gains_under_strong_decay(weight_decay=5.0, steps=60, lr=1e-2, device="cpu")
    as_is, offset = gains.gains["gain stored as is"], gains.gains["gain stored as offset from 1"]
    assert as_is[0] == pytest.approx(1.0) and offset[0] == pytest.approx(1.0)
    assert as_is[-1] < 0.3
    assert abs(offset[-1] - 1) < 0.1
    assert gains.losses["gain stored as offset from 1"][-1] < gains.losses["gain stored as is"][-1]


@pytest.mark.parametrize("kwargs, match", [
    ({"weight_decay": -1.0}, "-1.0"),
    ({"steps": 0}, "steps"),
    ({"lr": 0.0}, "lr"),
])
def test_training_experiments_reject_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        norms_under_groupings(**kwargs)
    with pytest.raises(ValueError, match=match):
        gains_under_strong_decay(**kwargs)
