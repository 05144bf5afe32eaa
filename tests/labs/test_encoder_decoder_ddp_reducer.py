"""Lab 05's reducer exercise: an answer written outside xtlab (as in a notebook) travels to the ranks as source text
and is judged there; answers that are no function, or cannot be sent, get a verdict without a launch."""

import torch

from xtlab.course import NOT_YET, PASS, TRY_AGAIN
from xtlab.labs.encoder_decoder_ddp.reducer_exercise import (
    CASES,
    REDUCER_EXERCISE,
    ReducerCaseModel,
    _shipped,
    reducer_reference,
)


def attach_reducer(model, all_reduce_sum, world_size):  # as a learner writes it in a cell: sent as source
    named = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    ready = set()
    for name, parameter in named:
        parameter.register_post_accumulate_grad_hook(lambda parameter, name=name: ready.add(name))

    def finish():  # reduces everything at the end, in one fixed order: correct, without overlap
        for name, parameter in named:
            if name not in ready:
                parameter.grad = torch.zeros_like(parameter)
            all_reduce_sum(parameter.grad)
            parameter.grad /= world_size
        return [name for name, _ in named if name not in ready]

    return finish


def test_an_answer_from_outside_xtlab_is_sent_as_source_and_passes():
    kind, name, source = _shipped(attach_reducer)
    assert kind == "source" and name == "attach_reducer" and source.startswith("def attach_reducer(")
    assert REDUCER_EXERCISE.check(attach_reducer).status == PASS


def test_answers_that_cannot_travel_get_a_verdict_without_a_launch():
    assert REDUCER_EXERCISE.check(lambda model, reduce, world_size: 3).status == TRY_AGAIN
    assert REDUCER_EXERCISE.check(None).status == NOT_YET
    assert _shipped(reducer_reference)[0] == "pickle"


def test_the_hidden_cases_cover_what_the_issue_names():
    settings = " | ".join(case.setting for case in CASES)
    for words in ("every parameter used", "never uses", "only rank 0 uses", "used twice", "frozen", "micro-batch"):
        assert words in settings
    tied = ReducerCaseModel(tied=True)
    assert tied.head.weight is tied.embed.weight and len(list(tied.parameters())) == 4
