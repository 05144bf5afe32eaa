"""The course as nbgrader assignments: a source notebook per lab with nbgrader's cell metadata, and a demo that
generates, autogrades and gives feedback on sample submissions in a scratch course directory.

The nbgrader source of a lab is built from ``notebooks/src/<stem>.py`` like the solutions edition, with cell
metadata: the cells holding ``### BEGIN SOLUTION`` are solution cells, each exercise check (``lab.check(...)``)
becomes an autograded test cell worth one point that fails unless the verdict is PASS, and every other cell is
locked (read-only). It does not switch on the solutions edition's answers, so the released assignment asks every
prediction as the learner edition does. nbgrader's own commands then work on it: ``generate_assignment``,
``autograde``, ``generate_feedback``.

Usage:
    python tools/classroom.py source DIR [STEM ...]   # write DIR/source/<lab>/<stem>.ipynb (a course directory)
    python tools/classroom.py demo [--keep DIR] [STEM ...]
        # in a scratch course directory: generate every assignment, autograde three sample submissions per lab
        # (the solutions: full marks; the released notebook untouched: zero; one catalogued wrong answer:
        # partial), generate feedback, and print `classroom: <lab> <submission> <score>/<max>` per submission
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build_notebooks import BEGIN_SOLUTION, SHOW_ANSWERS, editions, sources  # noqa: E402  (a sibling script)

REPO = Path(__file__).resolve().parents[1]
# nbgrader runs `alembic` and `jupyter` by name: this Python's scripts first on the path
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
# a check cell: `lab.check("name", fn)`, or `v = lab.check("name", fn)` then `v` (a later cell reads v.passed)
CHECK = re.compile(r'^(?:(\w+) = )?lab\.check\("(\w+)", (\w+)\)(?:\n\1)?\s*$')
POINTS = 1  # per exercise
SUBMISSIONS = ("solutions", "untouched", "wrong_answer")


def lab_of(stem: str):
    """The lab's package (its EXERCISES name the catalogued wrong answers)."""
    from xtlab.catalog import LABS

    package = next(lab.package for lab in LABS if lab.stem == stem)
    return importlib.import_module(f"xtlab.labs.{package}")


def nbgrader_source(stem: str) -> nbformat.NotebookNode:
    """The nbgrader source notebook of lab ``stem``: solutions, nbgrader metadata, answers not switched on."""
    notebook = editions(REPO / "notebooks" / "src" / f"{stem}.py")["solutions"]
    for cell in notebook.cells:
        meta = {"grade": False, "solution": False, "locked": True, "grade_id": f"cell-{cell.id}",
                "schema_version": 3}
        if cell.cell_type == "code":
            cell.source = cell.source.replace(SHOW_ANSWERS, "")
            check = CHECK.fullmatch(cell.source.strip())
            if BEGIN_SOLUTION in cell.source:
                meta.update(solution=True, locked=False)
            elif check:
                variable, name, function = check.groups()
                variable = variable or "verdict"
                cell.source = (f'{variable} = lab.check("{name}", {function})\nprint({variable})\n'
                               f'assert {variable}.passed, "{name}: not PASS yet (the verdict above says why)"')
                meta.update(grade=True, points=POINTS, grade_id=f"check-{name}")
        cell.metadata["nbgrader"] = meta
    return notebook


def exercise_names(notebook: nbformat.NotebookNode) -> list[str]:
    return [cell.metadata["nbgrader"]["grade_id"].removeprefix("check-") for cell in notebook.cells
            if cell.metadata.get("nbgrader", {}).get("grade")]


def write_sources(course: Path, stems: list[str]) -> dict[str, list[str]]:
    """DIR/source/<stem>/<stem>.ipynb for each lab; returns the exercise names per lab."""
    names = {}
    for stem in stems:
        notebook = nbgrader_source(stem)
        folder = course / "source" / stem
        folder.mkdir(parents=True, exist_ok=True)
        nbformat.write(notebook, folder / f"{stem}.ipynb")
        names[stem] = exercise_names(notebook)
    return names


CONFIG = """c = get_config()
c.CourseDirectory.root = {root!r}
c.CourseDirectory.course_id = "xtlab"
c.CourseDirectory.db_url = "sqlite:///{root}/gradebook.db"
c.ExecutePreprocessor.timeout = 600
c.Execute.timeout = 600
c.ClearSolutions.code_stub = {{"python": "# YOUR CODE HERE\\nraise NotImplementedError()"}}
"""


def _nbgrader(course: Path, *args: str, force: bool = True) -> None:
    command = [sys.executable, "-m", "nbgrader", *args, *(["--force"] if force else []), "--log-level=WARN"]
    result = subprocess.run(command, cwd=course, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"nbgrader {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")


def make_submissions(course: Path, stem: str, names: list[str]) -> None:
    """submitted/<submission>/<stem>/<stem>.ipynb: the solutions, the release untouched, one wrong answer."""
    release = nbformat.read(course / "release" / stem / f"{stem}.ipynb", as_version=4)
    solved = nbformat.read(course / "source" / stem / f"{stem}.ipynb", as_version=4)
    wrong = nbformat.read(course / "source" / stem / f"{stem}.ipynb", as_version=4)
    first = names[0]
    module = lab_of(stem).__name__
    # rebind the learner's name to the catalogue's first wrong answer, right before its check
    index = next(i for i, cell in enumerate(wrong.cells)
                 if cell.metadata["nbgrader"].get("grade_id") == f"check-{first}")
    function = CHECK.match(nbgrader_check_line(wrong.cells[index].source)).group(3)
    wrong.cells.insert(index, nbformat.v4.new_code_cell(
        f"# a catalogued wrong answer, as a learner might write it\nimport {module} as _lab\n\n"
        f'{function} = _lab.EXERCISES["{first}"].mistakes[0].answer'))
    for submission, notebook in zip(SUBMISSIONS, (solved, release, wrong), strict=True):
        folder = course / "submitted" / submission / stem
        folder.mkdir(parents=True, exist_ok=True)
        nbformat.write(notebook, folder / f"{stem}.ipynb")


def nbgrader_check_line(source: str) -> str:
    """``lab.check("name", fn)`` back from a graded cell's source."""
    match = re.search(r'\w+ = (lab\.check\("\w+", \w+\))', source)
    return match.group(1)


def scores(course: Path, stem: str) -> dict[str, tuple[float, float]]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course}/gradebook.db") as gradebook:
        return {student: (gradebook.find_submission(stem, student).score,
                          gradebook.find_submission(stem, student).max_score)
                for student in SUBMISSIONS}


def demo(stems: list[str], course: Path) -> dict[str, dict[str, tuple[float, float]]]:
    """Generate, autograde and give feedback for ``stems`` in ``course``; returns lab -> submission -> score."""
    (course / "nbgrader_config.py").write_text(CONFIG.format(root=str(course)))
    names = write_sources(course, stems)
    results = {}
    for stem in stems:
        # generate_assignment adds the assignment to the gradebook and autograde each student it finds in
        # submitted/ (both create by default): each nbgrader command is a 3-4 s interpreter start
        _nbgrader(course, "generate_assignment", stem)
        make_submissions(course, stem, names[stem])
        _nbgrader(course, "autograde", stem)
        _nbgrader(course, "generate_feedback", stem)
        results[stem] = scores(course, stem)
        for submission, (score, maximum) in results[stem].items():
            print(f"classroom: {stem} {submission} {score:g}/{maximum:g}", flush=True)
    return results


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    source = sub.add_parser("source", help="write the nbgrader source notebooks into a course directory")
    source.add_argument("directory", type=Path)
    source.add_argument("stems", nargs="*")
    run = sub.add_parser("demo", help="generate, autograde and give feedback on sample submissions")
    run.add_argument("--keep", type=Path, help="course directory to use and keep (default: a scratch one)")
    run.add_argument("stems", nargs="*")
    args = parser.parse_args(argv)
    stems = [path.stem for path in sources(args.stems or None)]
    if args.command == "source":
        for stem, names in write_sources(args.directory, stems).items():
            print(f"{stem}: {len(names)} graded exercises ({', '.join(names)})")
        return 0
    if args.keep:
        shutil.rmtree(args.keep, ignore_errors=True)
        args.keep.mkdir(parents=True)
        demo(stems, args.keep.resolve())
        return 0
    with tempfile.TemporaryDirectory() as scratch:
        demo(stems, Path(scratch))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
