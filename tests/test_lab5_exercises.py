"""Lab 05 exercises: answer keys come from the finder; wrong answers get a helpful message."""

import pytest

from xtlab.exercises.encoder_decoder_ddp import check_ddp_predictions, check_mystery_unused
from xtlab.experiments.encoder_decoder_ddp_quiz import QUIZ_MODELS, mystery_unused_names, quiz_answer_key

REFERENCE = {"fixed": True, "bug": False, "frozen_bug": True, "tied_decoder": True, "layer_dropout": False}


def test_mystery_key_is_the_dead_heads():
    assert sorted(mystery_unused_names()) == ["aux_head.bias", "aux_head.weight", "gate.bias", "gate.weight"]


def test_reference_answers_pass(capsys):
    assert check_mystery_unused(["gate.weight", "gate.bias", "aux_head.weight", "aux_head.bias"]).passed
    assert check_ddp_predictions(REFERENCE).passed
    assert "PASS" in capsys.readouterr().out


def test_quiz_key_matches_the_notebook_reference():
    assert quiz_answer_key() == REFERENCE
    assert set(QUIZ_MODELS) == set(REFERENCE)


def test_mystery_missing_and_frozen_answers_get_hints():
    verdict = check_mystery_unused(["gate.weight", "scale"])
    assert not verdict.passed
    assert "3 unused parameter(s) are missing" in verdict.message
    assert "scale" in verdict.message and "frozen" in verdict.message


@pytest.mark.parametrize("answer, expected", [
    ("gate.weight", "list of parameter names"), ([1, 2], "parameter name string"),
    (["decoder.to_logits.weight"], "not parameters of the mystery model"),
])
def test_mystery_bad_answers(answer, expected):
    verdict = check_mystery_unused(answer)
    assert not verdict.passed and expected in verdict.message


def test_wrong_prediction_names_the_model_and_the_truth():
    verdict = check_ddp_predictions({**REFERENCE, "frozen_bug": False})
    assert not verdict.passed
    assert "1 of 5 wrong" in verdict.message and "frozen_bug" in verdict.message and "it runs" in verdict.message


@pytest.mark.parametrize("answer, expected", [
    ([True], "dict"), ({"fixed": True}, "missing"), ({**REFERENCE, "other": True}, "unknown ['other']"),
    ({**REFERENCE, "bug": "no"}, "True or False"),
])
def test_bad_prediction_shapes(answer, expected):
    verdict = check_ddp_predictions(answer)
    assert not verdict.passed and expected in verdict.message
