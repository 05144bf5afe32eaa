"""Lab 01, exercise 2: the gradient-arrival recorder. The generic exercise tests feed the reference, a stub and
every catalogued mistake to the checker; these check the hidden steps and the run the heatmap is drawn from."""

import random

import torch

from xtlab.course import PASS, TRY_AGAIN
from xtlab.labs.layer_dropout import arrivals_exercise as arrivals
from xtlab.labs.layer_dropout.exercises import EXERCISES
from xtlab.labs.layer_dropout.experiments import run_layer_dropout

EXERCISE = EXERCISES["gradient_arrivals"]


def test_hidden_steps_hold_the_cases_the_issue_names():
    settings = " | ".join(case.setting for case in arrivals._cases())
    for words in ("tied pair", "frozen", "used twice in one forward", "set_to_none=False", "two backward passes"):
        assert words in settings


def test_every_state_occurs_in_the_expected_answers():
    seen = set()
    for index, case in enumerate(arrivals._cases()):
        seen |= set(arrivals._expected(case.args[0], 10 + index).values())
    assert seen == set(arrivals.STATES)


def test_a_post_accumulate_hook_reading_grad_is_caught_on_stale_grads():
    def post_accumulate(model, run_backward):
        arrived, handles = {}, []
        for name, parameter in model.named_parameters():
            if parameter.requires_grad:
                arrived[name] = "none"
                handles.append(parameter.register_post_accumulate_grad_hook(
                    lambda p, name=name: arrived.__setitem__(name, "nonzero" if p.grad.ne(0).any() else "zero")))
        run_backward()
        for handle in handles:
            handle.remove()
        return arrived

    verdict = EXERCISE.check(post_accumulate)
    assert verdict.status == TRY_AGAIN and "post-accumulate" in verdict.hint


def test_the_recorded_run_is_the_library_run_and_leaves_the_random_state_alone():
    before = (torch.get_rng_state(), random.getstate())
    recorded = arrivals.recorded_run(None, layer_dropout=0.1, depth=2, steps=12, seed=3)
    assert torch.equal(before[0], torch.get_rng_state()) and before[1] == random.getstate()
    library = run_layer_dropout(layer_dropout=0.1, depth=2, steps=12, seed=3)
    assert recorded.same_states_as(library) and recorded.run.reported_skips == library.reported_skips
    assert recorded.whose == "the library's recorder"
    yours = arrivals.recorded_run(arrivals.reference_gradient_arrivals, layer_dropout=0.1, depth=2, steps=12, seed=3)
    assert yours.whose == "your recorder" and yours.same_states_as(library)


def test_reference_passes():
    assert EXERCISE.check(arrivals.reference_gradient_arrivals).status == PASS
