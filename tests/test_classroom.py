"""The course as nbgrader assignments: every lab's nbgrader source carries solution, graded and locked cells, and
nbgrader's own commands generate, autograde and give feedback on sample submissions with the expected scores."""

import importlib.util
import re
import sys
import time
from pathlib import Path

import nbformat
import pytest

from xtlab.catalog import LABS

ROOT = Path(__file__).resolve().parents[1]


def load_classroom():
    sys.path.insert(0, str(ROOT / "tools"))
    spec = importlib.util.spec_from_file_location("classroom", ROOT / "tools" / "classroom.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CLASSROOM = load_classroom()


@pytest.mark.parametrize("lab", LABS, ids=lambda lab: lab.stem)
def test_each_lab_source_has_solution_graded_and_locked_cells(lab):
    notebook = CLASSROOM.nbgrader_source(lab.stem)
    metas = [cell.metadata["nbgrader"] for cell in notebook.cells]
    graded = [meta for meta in metas if meta["grade"]]
    assert [meta["grade_id"] for meta in graded] == [f"check-{name}" for name in CLASSROOM.exercise_names(notebook)]
    assert set(CLASSROOM.exercise_names(notebook)) <= set(CLASSROOM.lab_of(lab.stem).EXERCISES)
    assert graded and all(meta["points"] == CLASSROOM.POINTS and meta["locked"] for meta in graded)
    assert any(meta["solution"] and not meta["locked"] for meta in metas)
    plain = [meta for meta in metas if not meta["grade"] and not meta["solution"]]
    assert plain and all(meta["locked"] for meta in plain)
    assert len({meta["grade_id"] for meta in metas}) == len(metas)
    assert not any("show_answers()" in cell.source for cell in notebook.cells)  # the release asks every prediction
    for cell in notebook.cells:
        if cell.metadata["nbgrader"]["grade"]:
            assert re.search(r"^assert (\w+)\.passed, ", cell.source, re.M), cell.source


def test_a_check_kept_in_a_variable_is_graded_under_that_name():
    assert CLASSROOM.CHECK.fullmatch('v = lab.check("a", f)\nv').groups() == ("v", "a", "f")
    assert CLASSROOM.CHECK.fullmatch('lab.check("a", f)').groups() == (None, "a", "f")
    assert CLASSROOM.CHECK.fullmatch('v = lab.check("a", f)\nw') is None


def test_a_graded_cell_keeps_its_check_call():
    cell = 'verdict = lab.check("x", x)\nprint(verdict)\nassert verdict.passed, "..."'
    assert CLASSROOM.nbgrader_check_line(cell) == 'lab.check("x", x)'


@pytest.mark.slow
def test_nbgrader_grades_the_sample_submissions_of_lab_00(tmp_path, capsys):
    """The demo on lab 00 (`make classroom-demo` runs every lab): full marks, zero, and the wrong answer caught."""
    results = CLASSROOM.demo(["00_start_here"], tmp_path)
    assert results["00_start_here"] == {"solutions": (1.0, 1.0), "untouched": (0.0, 1.0), "wrong_answer": (0.0, 1.0)}
    assert "classroom: 00_start_here solutions 1/1" in capsys.readouterr().out
    feedback = (tmp_path / "feedback" / "wrong_answer" / "00_start_here" / "00_start_here.html").read_text()
    assert "TRY AGAIN" in feedback

    # an answer that never returns: the checker's own time limit ends it inside nbgrader's executor (whose cell
    # timeout, 600 s, is far beyond), so the submission is graded, at zero, instead of hanging the autograder
    submission = nbformat.read(tmp_path / "source" / "00_start_here" / "00_start_here.ipynb", as_version=4)
    cell = next(cell for cell in submission.cells if "### BEGIN SOLUTION" in cell.source)
    # (a sleep, not a busy loop: the same limit ends both, tests/course time-limit tests cover loops, and CI's two
    # cores are not spent spinning)
    cell.source = "import time\n\ndef chance_every_block_runs(num_blocks, p):\n    time.sleep(10**6)"
    folder = tmp_path / "submitted" / "endless" / "00_start_here"
    folder.mkdir(parents=True)
    nbformat.write(submission, folder / "00_start_here.ipynb")
    started = time.monotonic()
    CLASSROOM._nbgrader(tmp_path, "autograde", "00_start_here", "--student", "endless")
    seconds = time.monotonic() - started
    graded = nbformat.read(tmp_path / "autograded" / "endless" / "00_start_here" / "00_start_here.ipynb",
                           as_version=4)
    outputs = "".join(str(output) for cell in graded.cells for output in cell.get("outputs", []))
    assert "TRY AGAIN" in outputs and "did not finish" in outputs, outputs[-2000:]
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{tmp_path}/gradebook.db") as gradebook:
        assert gradebook.find_submission("00_start_here", "endless").score == 0.0
    assert seconds < 120, f"autograding an endless answer took {seconds:.0f} s"
