"""Predict-then-reveal: no answer before a commitment (reveal and gated cells), the computed answer after it, and
every answer at once in the solutions edition."""

import pytest

from xtlab.course import show_answers
from xtlab.widgets import Prediction, forget_predictions, predict


@pytest.fixture(autouse=True)
def fresh_kernel():
    forget_predictions()
    yield
    forget_predictions()


def test_running_the_question_again_keeps_the_commitment():
    predict("Which?", ["a", "b"]).commit("b")
    again = predict("Which?", ["a", "b"])
    assert again.committed == "b" and again.radio.disabled and again.reveal("b").right is True
    assert predict("Which?", ["a", "b", "c"]).committed is None  # another question
    forget_predictions()
    assert predict("Which?", ["a", "b"]).committed is None


@pytest.fixture
def solutions_edition():
    show_answers()
    yield
    show_answers(False)


def test_without_a_commitment_the_reveal_says_how_to_commit_and_never_the_answer():
    question = predict("Equal?", {"equal": True, "different": False})
    reveal = question.reveal(1 + 1 == 2, why="arithmetic")
    assert reveal.answer is None and reveal.right is None
    for view in (repr(reveal), reveal._repr_html_()):
        assert "Answer" not in view and "arithmetic" not in view and ".commit(label)" in view
        assert "equal" not in view.replace("Equal?", "")  # no choice is named, so none is favoured


def test_a_committed_prediction_is_judged_and_locks_the_widget():
    question = predict("Which?", ["a", "b", "c"])
    question.commit("b")
    assert question.radio.disabled and question.button.disabled
    assert "right" in question.reveal("b").verdict and question.reveal("b").right is True
    assert "not this time" in question.reveal("c").verdict and question.reveal("c").right is False
    assert "Answer (computed): c" in repr(question.reveal("c"))


def test_the_solutions_edition_shows_the_answer_without_a_commitment(solutions_edition):
    question = predict("Equal?", {"equal": True, "different": False})
    reveal = question.reveal(False, why="arithmetic")
    assert reveal.answer == "different" and "solutions edition" in repr(reveal)


def test_the_button_needs_a_choice_first():
    question = predict("Which?", ["a", "b"])
    question.button.click()
    assert question.committed is None and "first" in question.status.value
    question.radio.value = "a"
    question.button.click()
    assert question.committed == "a"


def test_a_gated_cell_renders_only_after_the_commitment(capsys):
    question = predict("Which?", ["a", "b"])
    calls = []
    gated = question.gate(lambda: calls.append(1) or "the table", what="the timing table")
    gated._ipython_display_()
    assert calls == [] and "Hidden until you commit: the timing table" in capsys.readouterr().out
    assert "the table" not in repr(gated)
    question.commit("a")
    assert repr(gated) == "'the table'" and calls == [1]
    with pytest.raises(TypeError, match="render"):
        question.gate("not a function")


def test_static_views_fold_the_answer_once_it_shows():
    question = predict("Equal?", {"equal": True, "different": False})
    assert "equal" in repr(question) and "Answer" not in repr(question) and "commit(" in repr(question)
    question.commit("equal")
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
