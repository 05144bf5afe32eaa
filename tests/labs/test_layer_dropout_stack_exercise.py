"""Lab 01, exercise 1: the layer-dropout stack. The generic exercise tests (tests/labs/test_exercises.py) feed the
reference, a stub and every catalogued mistake to the checker; these check what the hidden cases are made of and
that the reference is the library's own arithmetic."""

import torch

from xtlab.course import PASS, TRY_AGAIN, Case
from xtlab.labs.layer_dropout import stack_exercise as stack
from xtlab.labs.layer_dropout.exercises import EXERCISES

EXERCISE = EXERCISES["layer_dropout_stack"]


def test_hidden_cases_cover_the_edges():
    settings = [case.args[0] for case in stack._cases()]
    assert {s.num_blocks for s in settings} >= {1, 12}
    assert {0.0, 1.0} <= {s.p for s in settings if isinstance(s.p, float)}
    assert any(isinstance(s.p, tuple) for s in settings)
    assert any(not s.training for s in settings)
    assert any(s.dtype == torch.float64 for s in settings)
    assert all(isinstance(case, Case) for case in stack._cases())


def test_reference_matches_the_library_seed_for_seed():
    against = stack.stack_against_library(None, layer_dropout=0.4, depth=3, passes=12, seed=5)
    assert against.same_skips == 12 and against.largest_difference == 0.0
    assert stack.stack_against_library(stack.reference_layer_dropout_stack).whose == "yours"


def test_a_wrong_stack_is_told_apart_from_the_library():
    against = stack.stack_against_library(stack.p_as_keep_probability, layer_dropout=0.4, passes=12)
    assert against.same_skips < 12


def test_forgetting_the_residual_and_returning_only_the_stream_get_their_own_hint():
    def forgets_residual(blocks, x, p, training, generator):
        out, ran = stack.reference_layer_dropout_stack(blocks, x, p, training, generator)
        return out - x, ran

    verdict = EXERCISE.check(forgets_residual)
    assert verdict.status == TRY_AGAIN and "off by" in verdict.checked

    def returns_only_the_stream(blocks, x, p, training, generator):
        return stack.reference_layer_dropout_stack(blocks, x, p, training, generator)[0]

    verdict = EXERCISE.check(returns_only_the_stream)
    assert verdict.status == TRY_AGAIN and "return (out, ran)" in verdict.hint


def test_a_stack_drawing_one_number_at_a_time_passes_too():
    def one_at_a_time(blocks, x, p, training, generator):
        ps = [p] * len(blocks) if isinstance(p, (int, float)) else p
        ran = []
        for block, q in zip(blocks, ps, strict=True):
            if training and torch.rand(1, generator=generator).item() < q:
                ran.append(False)
                continue
            x = x + block.fn(block.norm(x))
            ran.append(True)
        return x, ran

    assert EXERCISE.check(one_at_a_time).status == PASS
