"""The notebooks: one source each, two editions generated from it and up to date, exercises unsolved for the
learner and solved in the solutions, and one list of labs that the catalog, the files and the README agree on."""

import importlib.util
import json
import re
from pathlib import Path

import pytest

from xtlab.catalog import LABS

ROOT = Path(__file__).resolve().parents[1]
STEMS = [lab.stem for lab in LABS]


def load_builder():
    spec = importlib.util.spec_from_file_location("build_notebooks", ROOT / "tools" / "build_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BUILDER = load_builder()


def code_cells(path: Path) -> list[dict]:
    return [cell for cell in json.loads(path.read_text())["cells"] if cell["cell_type"] == "code"]


def text_of(output: dict) -> str:
    return "".join(output.get("text", "")) + "".join(output.get("data", {}).get("text/plain", ""))


def check_outputs(path: Path) -> list[str]:
    """The text each exercise check cell (``lab.check(...)``) printed."""
    return ["".join(text_of(output) for output in cell["outputs"]) for cell in code_cells(path)
            if "lab.check(" in "".join(cell["source"])]


def test_catalog_files_packages_and_readme_agree():
    sources = sorted(path.stem for path in (ROOT / "notebooks" / "src").glob("*.py"))
    assert sources == STEMS
    for folder in ("notebooks", "solutions"):
        assert sorted(path.stem for path in (ROOT / folder).glob("*.ipynb")) == STEMS
    packages = sorted(path.name for path in (ROOT / "xtlab" / "labs").iterdir() if (path / "__init__.py").exists())
    assert packages == sorted(lab.package for lab in LABS)
    readme = (ROOT / "README.md").read_text()
    rows = re.findall(r"^\| (\d\d) \| `notebooks/(\S+)\.ipynb` \| `xtlab\.labs\.(\w+)` \| (\d+) \|$", readme, re.M)
    assert rows == [(f"{lab.number:02d}", lab.stem, lab.package, str(lab.minutes)) for lab in LABS]


@pytest.mark.parametrize("lab", LABS, ids=lambda lab: lab.stem)
def test_each_notebook_states_the_catalog_time(lab):
    source = (ROOT / "notebooks" / "src" / f"{lab.stem}.py").read_text()
    stated = re.findall(r"(?:Estimated time:\*\* |takes about )(\d+) minutes", source)
    assert stated == [str(lab.minutes)], f"{lab.stem} states {stated} minutes, the catalog {lab.minutes}"


@pytest.mark.parametrize("stem", STEMS)
def test_stored_editions_are_up_to_date_with_their_sources(stem):
    assert BUILDER.stale_notebooks([stem]) == []


def test_the_colab_setup_cell_does_nothing_outside_colab_and_installs_inside(monkeypatch):
    import subprocess
    import sys
    import types

    calls = []
    monkeypatch.setattr(subprocess, "run", lambda *args, **kwargs: calls.append(args))
    code = BUILDER.colab_setup_code()
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    exec(code, {})
    assert calls == []
    fake_colab = types.ModuleType("google.colab")
    fake_colab.output = types.SimpleNamespace(enable_custom_widget_manager=lambda: calls.append("widgets"))
    monkeypatch.setitem(sys.modules, "google.colab", fake_colab)
    monkeypatch.setitem(sys.modules, "google", types.ModuleType("google"))
    sys.modules["google"].colab = fake_colab
    exec(code, {})
    assert "git+https://github.com/" in calls[0][0][-1] and calls[-1] == "widgets"
    for stem in STEMS:
        first_code = code_cells(ROOT / "notebooks" / f"{stem}.ipynb")[0]
        assert "".join(first_code["source"]) == code.rstrip("\n")


@pytest.mark.parametrize("stem", STEMS)
def test_the_notebook_imports_its_own_lab_package_only(stem):
    source = (ROOT / "notebooks" / "src" / f"{stem}.py").read_text()
    package = next(lab.package for lab in LABS if lab.stem == stem)
    assert re.findall(r"from xtlab\.labs import (\w+) as lab", source) == [package]
    assert not re.search(r"from xtlab\.labs\.\w+", source), "import the lab package as `lab`, not its modules"


@pytest.mark.parametrize("stem", STEMS)
def test_learner_edition_holds_stubs_and_every_check_says_not_yet(stem):
    path = ROOT / "notebooks" / f"{stem}.ipynb"
    package = next(lab.package for lab in LABS if lab.stem == stem)
    exercises = importlib.import_module(f"xtlab.labs.{package}").EXERCISES
    code = "\n".join("".join(cell["source"]) for cell in code_cells(path))
    assert "### BEGIN SOLUTION" not in code and "### BEGIN HIDDEN TESTS" not in code
    assert code.count("raise NotImplementedError()") == len(exercises)
    verdicts = check_outputs(path)
    assert len(verdicts) == len(exercises)
    assert all(verdict.startswith("NOT YET") for verdict in verdicts), verdicts
    assert not any(re.search(r"^\s*'?PASS\b", text_of(o), re.M) for cell in code_cells(path) for o in cell["outputs"])


@pytest.mark.parametrize("stem", STEMS)
def test_solution_edition_passes_every_check(stem):
    path = ROOT / "solutions" / f"{stem}.ipynb"
    verdicts = check_outputs(path)
    assert verdicts and all(verdict.startswith("PASS") for verdict in verdicts), verdicts
    assert "### BEGIN SOLUTION" in "\n".join("".join(cell["source"]) for cell in code_cells(path))


@pytest.mark.parametrize("folder", ["notebooks", "solutions"])
@pytest.mark.parametrize("stem", STEMS)
def test_every_code_cell_ran_without_error(folder, stem):
    cells = code_cells(ROOT / folder / f"{stem}.ipynb")
    assert all(cell["execution_count"] for cell in cells)
    assert not any(output["output_type"] == "error" for cell in cells for output in cell["outputs"])


@pytest.mark.parametrize("stem", STEMS)
def test_every_teaching_helper_is_used(stem):
    source = (ROOT / "notebooks" / "src" / f"{stem}.py").read_text()
    assert "show_source(" in source and "predict(" in source and ".reveal(" in source


def test_learner_code_replaces_solutions_with_stubs_at_their_indent():
    code = "def f(x):\n    ### BEGIN SOLUTION\n    return x\n    ### END SOLUTION\n\n\nf"
    stub = "def f(x):\n    # YOUR CODE HERE\n    raise NotImplementedError()\n\n\nf"
    assert BUILDER.learner_code(code, "test") == stub
    hidden = "x = 1\n### BEGIN HIDDEN TESTS\nassert x == 1\n### END HIDDEN TESTS"
    assert BUILDER.learner_code(hidden, "test") == "x = 1"


@pytest.mark.parametrize(("code", "words"), [
    ("### BEGIN SOLUTION\nx = 1\n### END SOLUTION", "inside a function or class body"),
    ("def f():\n    ### BEGIN SOLUTION\n    return 1", "never closed"),
    ("def f():\n    return 1\n    ### END SOLUTION", "without"),
])
def test_broken_markers_are_refused(code, words):
    with pytest.raises(BUILDER.SourceError, match=words):
        BUILDER.learner_code(code, "test")


def test_cell_ids_are_stable_and_unique():
    built = BUILDER.editions(ROOT / "notebooks" / "src" / f"{STEMS[1]}.py")
    again = BUILDER.editions(ROOT / "notebooks" / "src" / f"{STEMS[1]}.py")
    for edition in built:
        ids = [cell.id for cell in built[edition].cells]
        assert ids == [cell.id for cell in again[edition].cells] and len(set(ids)) == len(ids)
