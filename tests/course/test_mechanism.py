"""The mechanism-check toolkit: cases named in feedback, value and gradient comparison that never prints the
reference, counted calls, untouched inputs, and draws from the global random generators detected."""

import random

import pytest
import torch
from torch import nn

from xtlab.course import (
    CallCounter,
    Case,
    Untouched,
    case_failed,
    compare_gradients,
    compare_values,
    global_rng_watch,
    gradients,
    seeded_generator,
    show_number,
)


def test_show_number_prints_enough_digits_to_tell_a_near_miss_from_the_answer():
    assert show_number(0.99999, 1.0) == "0.99999" and show_number(1.0, 1.0) == "1"
    assert show_number(2.0000001, 2.0) != "2" and show_number(3.14159265) == "3.142"
    assert show_number("x") == "'x'"


def test_compare_values_says_how_far_off_and_where_never_the_reference():
    expected = torch.tensor([[1.0, 2.0], [3.0, 123.456]])
    assert compare_values(expected.clone(), expected) is None
    got = expected.clone()
    got[1, 1] += 0.5
    problem = compare_values(got, expected, name="the logits")
    assert "the logits is off by up to 0.5" in problem and "(1, 1)" in problem and "123.4" not in problem
    assert "shape (2,)" in compare_values(torch.zeros(2), expected)
    assert "dtype torch.float64" in compare_values(expected.double(), expected)
    assert "list" in compare_values([1.0], expected)
    assert "NaN" in compare_values(torch.full((2, 2), float("nan")), expected)
    assert "differs in 1 of 3" in compare_values(torch.tensor([1, 2, 4]), torch.tensor([1, 2, 3]))


def test_gradient_comparison_catches_a_detached_path_and_a_gradient_that_must_not_flow():
    x = torch.randn(3, requires_grad=True)
    w = torch.randn(3, requires_grad=True)
    reference = gradients(x * w, [x, w])
    detached = gradients(x.detach() * w, [x, w])
    assert compare_gradients(reference, reference, ["x", "w"]) is None
    assert compare_gradients(detached, reference, ["x", "w"]) == "no gradient reached x (a detached or bypassed path?)"
    assert "must get none" in compare_gradients(reference, detached, ["x", "w"])
    assert "the gradient of x is off" in compare_gradients(gradients(x * w * 2, [x, w]), reference, ["x", "w"])
    assert gradients(torch.ones(2), [x]) == [None]


def test_call_counter_counts_forward_calls_and_removes_its_hooks():
    first, second = nn.Linear(2, 2), nn.Linear(2, 2)
    with CallCounter({"first": first, "second": second}) as calls:
        first(torch.zeros(1, 2))
        first(torch.zeros(1, 2))
    assert calls.counts == {"first": 2, "second": 0} and calls.called() == ["first"]
    assert not first._forward_pre_hooks


def test_untouched_sees_in_place_edits_and_value_changes():
    a, b, c = torch.zeros(2), torch.zeros(2), torch.zeros(2)
    watch = Untouched({"a": a, "b": b, "c": c})
    a.add_(0)  # same values, but written in place
    b.data[0] = 1.0
    assert watch.changed() == ["a", "b"]


def test_global_rng_watch_names_each_generator_drawn_from_and_none_for_a_given_generator():
    with global_rng_watch() as drawn:
        torch.rand(1, generator=seeded_generator(0))
    assert drawn == []
    with global_rng_watch() as drawn:
        torch.rand(1)
        random.random()
    assert len(drawn) == 2 and "torch" in drawn[0] and "Python" in drawn[1]


def test_case_failed_names_the_case_and_whether_it_is_an_edge():
    verdict = case_failed(Case("p=1.0, depth 12", edge=True), "the output is off", "look at the skip")
    assert verdict.status == "TRY AGAIN" and verdict.checked.startswith("edge case (p=1.0, depth 12)")
    assert not verdict.passed
    with pytest.raises(TypeError, match="verdict.passed"):
        bool(verdict)
