"""The per-lab part of the teacher guide, generated from what the course holds (never typed twice).

For each lab in the catalog: its objective and time, the panels to show live and the predictions to pause on
(read from the notebook's source), and each exercise with the wrong answers its checker is proven to catch
(the Mistake records that tests/labs/test_exercises.py runs). tools/build_site.py writes it next to
docs/teaching.md, which includes it.

Usage: python tools/teaching_guide.py   (prints the markdown)
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

from xtlab.catalog import LABS

REPO = Path(__file__).resolve().parents[1]


def predictions_and_panels(source: Path) -> tuple[list[str], list[str]]:
    """The questions of every ``predict(...)`` call and the names of every ``lab.*_panel()`` call in a source."""
    questions, panels = [], []
    for node in ast.walk(ast.parse(source.read_text())):
        if not isinstance(node, ast.Call):
            continue
        function = node.func
        if isinstance(function, ast.Name) and function.id == "predict" and node.args:
            if isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                questions.append(node.args[0].value)
        if isinstance(function, ast.Attribute) and function.attr.endswith("_panel"):
            panels.append(function.attr)
    return questions, panels


def guide_markdown() -> str:
    lines = []
    for lab in LABS:
        module = importlib.import_module(f"xtlab.labs.{lab.package}")
        questions, panels = predictions_and_panels(REPO / "notebooks" / "src" / f"{lab.stem}.py")
        lines += [f"## Lab {lab.number:02d} — {lab.title} (about {lab.minutes} minutes)", "",
                  f"**Objective:** {lab.objective}. Notebook: `notebooks/{lab.notebook}`.", ""]
        if panels:
            lines += ["**Show live** (move the controls in front of the class): "
                      + ", ".join(f"`{name}`" for name in panels) + ".", ""]
        if questions:
            lines += ["**Pause on these predictions** (let everyone commit before running the next cell):", ""]
            lines += [f"- {question}" for question in questions] + [""]
        lines += ["**Exercises and the wrong answers their checkers catch:**", ""]
        for exercise in module.EXERCISES.values():
            mistakes = "; ".join(mistake.description for mistake in exercise.mistakes)
            lines.append(f"- `{exercise.name}` — write {exercise.prompt}. Common wrong answers: {mistakes}.")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(guide_markdown())
