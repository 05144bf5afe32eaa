"""The teacher guide's per-lab part is generated from the catalog, the sources and the exercises."""

import importlib
import importlib.util
from pathlib import Path

from xtlab.catalog import LABS

REPO = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("teaching_guide", REPO / "tools" / "teaching_guide.py")
guide = importlib.util.module_from_spec(spec)
spec.loader.exec_module(guide)


def test_every_lab_has_its_objective_predictions_and_caught_mistakes():
    text = guide.guide_markdown()
    for lab in LABS:
        assert f"## Lab {lab.number:02d} — {lab.title} (about {lab.minutes} minutes)" in text
        assert lab.objective in text
        for exercise in importlib.import_module(f"xtlab.labs.{lab.package}").EXERCISES.values():
            assert f"`{exercise.name}`" in text
            assert all(mistake.description in text for mistake in exercise.mistakes)
    assert text.count("**Pause on these predictions**") == len(LABS)


def test_predictions_and_panels_are_read_from_the_source(tmp_path):
    source = tmp_path / "lab.py"
    source.write_text('q = predict("Will it?", ["yes", "no"])\npanel = lab.speed_panel()\nother("x")\n')
    assert guide.predictions_and_panels(source) == (["Will it?"], ["speed_panel"])


def test_the_site_includes_the_guide():
    assert "{include} teaching_by_lab.md" in (REPO / "docs" / "teaching.md").read_text()
