"""Lab 03 notebook: the stored notebook is what its builder writes, and it defines no lab code of its own."""

import importlib.util
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "03_xl_rotary.ipynb"


def load_builder():
    spec = importlib.util.spec_from_file_location("build_03", ROOT / "tools" / "notebook_sources" / "03_xl_rotary.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_stored_notebook_matches_its_builder():
    stored = nbformat.read(NOTEBOOK, as_version=4)
    built = load_builder().build()
    assert [(c.cell_type, c.source) for c in stored.cells] == [(c.cell_type, c.source) for c in built.cells]


def test_every_code_cell_has_stored_outputs_and_no_errors():
    stored = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in stored.cells if c.cell_type == "code"]
    assert all(c.outputs for c in code)
    assert not any(o.output_type == "error" for c in code for o in c.outputs)


def test_only_the_exercise_answer_is_defined_in_the_notebook():
    sources = [c.source for c in nbformat.read(NOTEBOOK, as_version=4).cells if c.cell_type == "code"]
    definitions = [line for s in sources for line in s.splitlines() if line.startswith(("def ", "class "))]
    assert definitions == ["def my_positions(M, T):"]
