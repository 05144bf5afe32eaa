"""A run that is a shorter or longer version of one already trained reuses it: the first n steps of every run
are the same, so slicing or resuming must give exactly what a fresh run gives, whatever ran in between."""

import pytest
import torch

from xtlab.labs.layer_dropout import experiments
from xtlab.labs.layer_dropout.experiments import run_layer_dropout

SETTINGS = {"layer_dropout": 0.3, "depth": 2, "seed": 4, "neuron_dropout": 0.2}


def _fresh(steps: int):
    experiments._run_layer_dropout.cache_clear()
    experiments._training_session.cache_clear()
    return run_layer_dropout(steps=steps, **SETTINGS)


def _same(got, expected) -> None:
    assert got.steps == expected.steps
    assert got.presence == expected.presence  # states, norms and losses, exactly
    assert got.reported_skips == expected.reported_skips
    assert (got.block_labels, got.block_kinds) == (expected.block_labels, expected.block_kinds)


@pytest.fixture(autouse=True)
def _clear_after():
    yield
    experiments._run_layer_dropout.cache_clear()
    experiments._training_session.cache_clear()


def test_a_shorter_run_is_the_first_steps_of_a_longer_one():
    expected = _fresh(10)
    _fresh(25)
    _same(run_layer_dropout(steps=10, **SETTINGS), expected)


def test_a_longer_run_resumes_and_matches_a_fresh_run_even_after_other_random_draws():
    expected = _fresh(25)
    _fresh(10)
    torch.rand(1000)  # a notebook cell drawing in between must not change the resumed steps
    run_layer_dropout(steps=8, **{**SETTINGS, "seed": 9})  # nor another run
    _same(run_layer_dropout(steps=25, **SETTINGS), expected)


def test_resuming_draws_nothing_from_the_callers_random_stream():
    _fresh(5)
    torch.manual_seed(123)
    state = torch.get_rng_state()
    run_layer_dropout(steps=12, **SETTINGS)  # resumes the seeded session: 7 more steps of skips and dropout
    assert torch.equal(torch.get_rng_state(), state)


def test_first_rejects_more_steps_than_recorded():
    run = _fresh(3)
    with pytest.raises(ValueError, match="count must be <= the 3 recorded steps, but got 4"):
        run.presence.first(4)


def test_a_run_interrupted_mid_training_is_not_resumed_later(monkeypatch):
    expected = _fresh(12)
    experiments._run_layer_dropout.cache_clear()
    experiments._training_session.cache_clear()
    run_layer_dropout(steps=4, **SETTINGS)
    real_step, calls = experiments._TrainingSession._step, []

    def interrupted(self, step):
        calls.append(step)
        if len(calls) == 3:
            raise KeyboardInterrupt  # the learner stops the cell during step 6
        real_step(self, step)

    monkeypatch.setattr(experiments._TrainingSession, "_step", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_layer_dropout(steps=12, **SETTINGS)
    monkeypatch.setattr(experiments._TrainingSession, "_step", real_step)
    _same(run_layer_dropout(steps=12, **SETTINGS), expected)
