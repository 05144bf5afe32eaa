"""Lab 03 exercises: right answers pass, wrong ones fail with a message that says what to fix."""

from xtlab.exercises.xl_rotary import EQUALITY_QUESTIONS, check_equality_predictions, check_memory_positions

RIGHT = {"a": True, "b": False, "c": True, "d": False, "e": False}


def test_reference_position_function_passes(capsys):
    assert check_memory_positions(lambda M, T: list(range(-M, T))).passed
    assert "PASS" in capsys.readouterr().out


def test_newest_first_memories_are_diagnosed():
    verdict = check_memory_positions(lambda M, T: [-m for m in range(1, M + 1)] + list(range(T)))
    assert not verdict.passed and "newest-first" in verdict.message and "[-2, -1, 0, 1, 2]" in verdict.message


def test_restarted_positions_are_called_the_bug():
    verdict = check_memory_positions(lambda M, T: list(range(M)) + list(range(T)))
    assert not verdict.passed and "restart at 0" in verdict.message


def test_wrong_length_and_failing_functions_and_non_functions():
    assert "M + T = 5 keys" in check_memory_positions(lambda M, T: list(range(T))).message
    assert "ZeroDivisionError" in check_memory_positions(lambda M, T: [1 / 0]).message
    assert "got list" in check_memory_positions([-2, -1, 0]).message


def test_right_predictions_pass():
    assert set(RIGHT) == set(EQUALITY_QUESTIONS)
    assert check_equality_predictions(RIGHT).passed


def test_wrong_prediction_names_the_question_and_why():
    verdict = check_equality_predictions({**RIGHT, "b": True})
    assert not verdict.passed
    assert "b: measured different" in verdict.message and "take softmax weight" in verdict.message


def test_malformed_predictions_are_explained():
    assert "missing ['e']" in check_equality_predictions({k: v for k, v in RIGHT.items() if k != "e"}).message
    assert "check ['a']" in check_equality_predictions({**RIGHT, "a": "yes"}).message
    assert "got list" in check_equality_predictions([True]).message
