"""Predict-then-reveal: the answer comes from the computed value, the static view keeps it folded."""

import pytest

from xtlab.widgets import Prediction, predict


def test_reveal_names_the_choice_whose_value_was_computed():
    question = predict("Equal?", {"equal": True, "different": False})
    reveal = question.reveal(1 + 1 == 2, why="arithmetic")
    assert reveal.answer == "equal" and reveal.prediction is None
    assert "did not commit" in repr(reveal)


def test_a_committed_prediction_is_judged_and_locks_the_widget():
    question = predict("Which?", ["a", "b", "c"])
    question.commit("b")
    assert question.radio.disabled and question.button.disabled
    assert "right" in question.reveal("b").verdict
    assert "not this time" in question.reveal("c").verdict


def test_the_button_needs_a_choice_first():
    question = predict("Which?", ["a", "b"])
    question.button.click()
    assert question.committed is None and "first" in question.status.value
    question.radio.value = "a"
    question.button.click()
    assert question.committed == "a"


def test_static_views_never_show_the_answer_unfolded():
    question = predict("Equal?", {"equal": True, "different": False})
    assert "equal" in repr(question) and "Answer" not in repr(question)
    html = question.reveal(False)._repr_html_()
    assert html.startswith("<details>") and "different" in html.split("</summary>")[1]


@pytest.mark.parametrize(("choices", "error", "words"), [
    ("ab", TypeError, "choices must be"),
    (["only"], ValueError, "at least two"),
    ({1: True, 2: False}, ValueError, "str labels"),
])
def test_bad_choices_are_refused(choices, error, words):
    with pytest.raises(error, match=words):
        Prediction("q", choices)


def test_a_computed_value_must_match_exactly_one_choice():
    question = predict("q", {"x": 1, "y": 2})
    with pytest.raises(ValueError, match="3"):
        question.reveal(3)
    with pytest.raises(ValueError, match="not-a-label"):
        question.commit("not-a-label")
