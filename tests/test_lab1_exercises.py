import pytest

from xtlab.exercises.layer_dropout import check_expected_all_blocks_steps, check_skipped_blocks_at


def reference_skipped(present, labels, t):
    return [label for label, got in zip(labels, present[t], strict=True) if not got]


def test_reference_skipped_blocks_passes(capsys):
    verdict = check_skipped_blocks_at(reference_skipped)
    assert verdict.passed
    assert capsys.readouterr().out.startswith("PASS")


@pytest.mark.parametrize(
    ("answer", "hint"),
    [
        (lambda present, labels, t: [label for label, got in zip(labels, present[t], strict=True) if got],
         "DID get a gradient"),
        (lambda present, labels, t: [labels[i] for i in range(len(labels)) if not present[i, t]], "present[t]"),
        (lambda present, labels, t: [i for i, got in enumerate(present[t]) if not got], "column indices"),
        (lambda present, labels, t: "attn_layers.layers.1", "return a list"),
        (lambda present, labels, t: reference_skipped(present, labels, t) * 2 or [], "twice"),
        (lambda present, labels, t: present[t + 10], "raised IndexError"),
        (lambda present, labels, t: labels[:1], "are ["),
    ],
)
def test_wrong_skipped_blocks_fail_with_a_helpful_message(answer, hint, capsys):
    verdict = check_skipped_blocks_at(answer)
    assert not verdict.passed and hint in verdict.message
    assert capsys.readouterr().out.startswith("NOT YET")


def test_passing_a_value_instead_of_a_function_is_explained():
    assert "pass your function itself" in check_skipped_blocks_at(["attn_layers.layers.0"]).message
    assert "not a number" in check_expected_all_blocks_steps(25.8).message


def test_reference_expectation_passes():
    assert check_expected_all_blocks_steps(lambda num_blocks, p, steps: steps * (1 - p) ** num_blocks).passed


@pytest.mark.parametrize(
    ("answer", "hint"),
    [
        (lambda num_blocks, p, steps: (1 - p) ** num_blocks, "multiply by the number of steps"),
        (lambda num_blocks, p, steps: steps * p**num_blocks, "EVERY block is skipped"),
        (lambda num_blocks, p, steps: steps * (1 - p * num_blocks), "first-order approximation"),
        (lambda num_blocks, p, steps: steps * (1 - p) * num_blocks, "multiplies by L"),
        (lambda num_blocks, p, steps: steps * (1 - (1 - p) ** num_blocks), "at least one skip"),
        (lambda num_blocks, p, steps: steps * (1 - p) ** (num_blocks / 2), "expected count is"),
        (lambda num_blocks, p, steps: "many", "return a number"),
        (lambda num_blocks: 1.0, "raised TypeError"),
    ],
)
def test_wrong_expectation_fails_with_a_helpful_message(answer, hint):
    verdict = check_expected_all_blocks_steps(answer)
    assert not verdict.passed and hint in verdict.message
