"""Nothing stored in the learner edition gives a prediction away: not its reveal, not any cell between the
question and the reveal (a panel, a table, a timing line), and no exercise ships solved. The solutions edition
shows every answer. Read from the stored notebooks, for every lab."""

import json
import re
from pathlib import Path

import pytest

from xtlab.catalog import LABS

ROOT = Path(__file__).resolve().parents[1]
STEMS = [lab.stem for lab in LABS]
QUESTION = re.compile(r"^(\w+)\s*=\s*(predict|predict_verdicts)\(", re.M)
AUDIT_VERDICT = re.compile(r"\[(holds|holds only under an unstated condition|does not hold)\]")


def cells(folder: str, stem: str) -> list[dict]:
    return json.loads((ROOT / folder / f"{stem}.ipynb").read_text())["cells"]


def source(cell: dict) -> str:
    return "".join(cell["source"])


def shown(cell: dict) -> str:
    """Every text a stored cell shows (stream, plain text, HTML)."""
    parts = []
    for output in cell.get("outputs", []):
        parts.append("".join(output.get("text", "")))
        data = output.get("data", {})
        parts += ["".join(data.get(kind, "")) for kind in ("text/plain", "text/html", "text/markdown")]
    return "\n".join(parts)


def has_image(cell: dict) -> bool:
    return any(kind.startswith("image/") for output in cell.get("outputs", []) for kind in output.get("data", {}))


def predictions(stem: str) -> list[tuple[str, int, int]]:
    """(name, index of the question's cell, index of its reveal's cell) for every prediction of a notebook."""
    found = []
    notebook = cells("notebooks", stem)
    for index, cell in enumerate(notebook):
        if cell["cell_type"] != "code":
            continue
        for match in QUESTION.finditer(source(cell)):
            name = match.group(1)
            reveal = next(i for i in range(index, len(notebook)) if f"{name}.reveal(" in source(notebook[i]))
            found.append((name, index, reveal))
    return found


def answer_in_solutions(stem: str, name: str, reveal: int) -> list[str]:
    """What the solutions edition's reveal says the answer is: a label, or an audit's verdicts."""
    text = shown(cells("solutions", stem)[reveal])
    label = re.search(r"^Answer \(computed\): (.+)$", text, re.M)
    if label:
        return [label.group(1).strip()]
    verdicts = AUDIT_VERDICT.findall(text)
    assert verdicts, f"{stem}: the solutions edition's reveal of {name} shows no answer:\n{text[:300]}"
    return verdicts


CASES = [(stem, *prediction) for stem in STEMS for prediction in predictions(stem)]


def test_every_lab_with_predictions_is_read():
    assert len(CASES) >= 20 and {case[0] for case in CASES} >= {"01_layer_dropout", "03_xl_rotary"}


@pytest.mark.parametrize(("stem", "name", "asked", "revealed"), CASES,
                         ids=[f"{case[0]}:{case[1]}" for case in CASES])
def test_no_stored_learner_cell_up_to_the_reveal_gives_the_answer(stem, name, asked, revealed):
    answers = answer_in_solutions(stem, name, revealed)
    learner, solutions = cells("notebooks", stem), cells("solutions", stem)
    assert [source(c) for c in learner[asked:revealed + 1]] == [source(c) for c in solutions[asked:revealed + 1]]
    reveal_text = shown(learner[revealed])
    assert "Answer" not in reveal_text and not AUDIT_VERDICT.search(reveal_text), reveal_text[:300]
    for index in range(asked, revealed + 1):
        cell = learner[index]
        if cell["cell_type"] != "code":
            continue
        assert not has_image(cell), f"{stem} cell {index}: an image between {name} and its reveal"
        text = shown(cell)
        if len(answers) == 1 and index != asked:  # the question itself lists every choice
            assert answers[0] not in text, f"{stem} cell {index} shows {name}'s answer {answers[0]!r}"


@pytest.mark.parametrize("stem", STEMS)
def test_no_exercise_ships_solved_in_the_learner_edition(stem):
    for cell in cells("notebooks", stem):
        assert not re.search(r"^\s*'?PASS\b", shown(cell), re.M), source(cell)[:200]
