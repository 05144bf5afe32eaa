"""Build both editions of every notebook from its jupytext source, executed, with outputs stored.

One source per notebook: ``notebooks/src/<stem>.py`` (jupytext ``py:percent``). Two editions come out of it:

- the learner edition, ``notebooks/<stem>.ipynb``: each region between ``### BEGIN SOLUTION`` and
  ``### END SOLUTION`` becomes ``# YOUR CODE HERE`` + ``raise NotImplementedError()``, and each region between
  ``### BEGIN HIDDEN TESTS`` and ``### END HIDDEN TESTS`` is dropped (nbgrader's markers);
- the solution edition, ``solutions/<stem>.ipynb``: the source as written, markers included.

Both are executed top to bottom (nbclient, a fresh kernel each, from the edition's folder) and stored with their
outputs, which nbval then compares. Cell ids are derived from each cell's first line, so a rebuild keeps them.

Usage:
    python tools/build_notebooks.py                 # build every notebook
    python tools/build_notebooks.py 01_layer_dropout # build one
    python tools/build_notebooks.py --check         # exit 1 when a stored notebook is out of date
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path

import jupytext
import nbformat
from nbclient import NotebookClient

sys.path.insert(0, str(Path(__file__).resolve().parent))
from links import colab_setup_code  # noqa: E402  (a sibling script, not a package)

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ROOT / "notebooks" / "src"
EDITIONS = {"learner": ROOT / "notebooks", "solutions": ROOT / "solutions"}

BEGIN_SOLUTION, END_SOLUTION = "### BEGIN SOLUTION", "### END SOLUTION"
BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
MARKERS = (BEGIN_SOLUTION, END_SOLUTION, BEGIN_HIDDEN, END_HIDDEN)
STUB = ("# YOUR CODE HERE", "raise NotImplementedError()")
KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}


class SourceError(ValueError):
    """A notebook source breaks a rule of the editions (unmatched marker, top-level solution, ...)."""


def learner_code(code: str, where: str) -> str:
    """``code`` with solutions replaced by a stub and hidden tests dropped."""
    out: list[str] = []
    region: str | None = None
    for number, line in enumerate(code.splitlines(), start=1):
        marker = line.strip()
        if marker in (BEGIN_SOLUTION, BEGIN_HIDDEN):
            if region is not None:
                raise SourceError(f"{where}, line {number}: {marker!r} inside an open {region!r} region")
            region = marker
            if marker == BEGIN_SOLUTION:
                indent = line[: len(line) - len(line.lstrip())]
                if not indent:
                    raise SourceError(f"{where}, line {number}: a solution region must sit inside a function or "
                                      "class body (at top level the learner edition's stub would raise on run)")
                out += [indent + stub for stub in STUB]
        elif marker in (END_SOLUTION, END_HIDDEN):
            expected = BEGIN_SOLUTION if marker == END_SOLUTION else BEGIN_HIDDEN
            if region != expected:
                raise SourceError(f"{where}, line {number}: {marker!r} without {expected!r}")
            region = None
        elif region is None:
            out.append(line)
    if region is not None:
        raise SourceError(f"{where}: {region!r} is never closed")
    return "\n".join(out)


def cell_id(cell: nbformat.NotebookNode, taken: set[str]) -> str:
    """A stable id: a hash of the cell's kind and first non-empty line, made unique within the notebook."""
    first = next((line for line in cell.source.splitlines() if line.strip()), "")
    base = cell.cell_type[0] + hashlib.sha1(first.encode()).hexdigest()[:8]
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        candidate = f"{base}-{n}"
    taken.add(candidate)
    return candidate


def with_colab_setup(cells: list[nbformat.NotebookNode]) -> list[nbformat.NotebookNode]:
    """``cells`` with the Colab setup cell (tools/links.py) placed before the first code cell."""
    first_code = next((i for i, cell in enumerate(cells) if cell.cell_type == "code"), len(cells))
    setup = nbformat.v4.new_code_cell(colab_setup_code())
    return [*cells[:first_code], setup, *cells[first_code:]]


# The solutions edition shows every prediction's answer and every audit verdict without a commitment.
SHOW_ANSWERS = ("\n# The solutions edition: every answer shows without a prediction committed first.\n"
                "from xtlab.course import show_answers\n\nshow_answers()\n")


def editions(source: Path) -> dict[str, nbformat.NotebookNode]:
    """The learner and solution editions of ``source``, without outputs; each opens with the Colab setup cell,
    which in the solutions edition also switches on every answer."""
    notebook = jupytext.read(source, fmt="py:percent")
    source_cells = with_colab_setup(notebook.cells)
    setup_index = next(i for i, cell in enumerate(source_cells) if cell.cell_type == "code")
    built = {}
    for edition in EDITIONS:
        cells, taken = [], set()
        for index, cell in enumerate(source_cells):
            where = f"{source.name}, cell {index}"
            if cell.cell_type == "code":
                code = learner_code(cell.source, where) if edition == "learner" else cell.source
                if edition == "solutions" and index == setup_index:
                    code += SHOW_ANSWERS
                new = nbformat.v4.new_code_cell(code, metadata=dict(cell.metadata))
            else:
                if any(marker in cell.source for marker in MARKERS):
                    raise SourceError(f"{where}: solution markers belong in code cells only")
                new = nbformat.v4.new_markdown_cell(cell.source, metadata=dict(cell.metadata))
            new.id = cell_id(new, taken)
            cells.append(new)
        built[edition] = nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": KERNELSPEC,
                                                                         "language_info": {"name": "python"}})
    return built


def execute(notebook: nbformat.NotebookNode, folder: Path, timeout: int = 300) -> float:
    """Run ``notebook`` in a fresh kernel from ``folder``, in place; return the wall time in seconds."""
    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(folder)}}, store_widget_state=False,
                            record_timing=False)
    start = time.perf_counter()
    client.execute()
    notebook.metadata.pop("widgets", None)
    return time.perf_counter() - start


def sources(stems: list[str] | None = None) -> list[Path]:
    found = sorted(SOURCES.glob("*.py"))
    if stems:
        unknown = sorted(set(stems) - {path.stem for path in found})
        if unknown:
            raise SystemExit(f"no source for {unknown}; the sources are {[path.stem for path in found]}")
        found = [path for path in found if path.stem in stems]
    return found


def _cells_as_built(notebook: nbformat.NotebookNode) -> list[tuple[str, str, str]]:
    return [(cell.get("id", ""), cell.cell_type, cell.source) for cell in notebook.cells]


def stale_notebooks(stems: list[str] | None = None) -> list[str]:
    """Every stored edition whose cells (ids, kinds, code and text) differ from what its source builds."""
    stale = []
    for source in sources(stems):
        for edition, notebook in editions(source).items():
            path = EDITIONS[edition] / f"{source.stem}.ipynb"
            if not path.exists():
                stale.append(f"{path.relative_to(ROOT)} (missing)")
            elif _cells_as_built(nbformat.read(path, as_version=4)) != _cells_as_built(notebook):
                stale.append(str(path.relative_to(ROOT)))
    return stale


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("stems", nargs="*", help="notebook names without extension (default: all)")
    parser.add_argument("--check", action="store_true", help="only check that the stored notebooks are up to date")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_notebooks()
        for path in stale:
            print(f"out of date: {path} (run `make notebooks`)")
        return 1 if stale else 0
    for source in sources(args.stems):
        for edition, notebook in editions(source).items():
            folder = EDITIONS[edition]
            folder.mkdir(exist_ok=True)
            elapsed = execute(notebook, folder)
            nbformat.write(notebook, folder / f"{source.stem}.ipynb")
            print(f"{edition:9} {source.stem}: executed and stored in {elapsed:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
