"""Execute notebooks and store their outputs in place: what `nbval` later compares.

Runs each notebook top to bottom with nbclient (the same kernel path nbval uses), from the
notebooks' own folder, and stores outputs without widget state (the widgets are rebuilt when a
learner runs the cells) so the files stay small and free of random model ids.

Usage: python tools/store_notebook_outputs.py notebooks/01_layer_dropout.ipynb [...]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient


def store_outputs(path: Path, timeout: int = 300) -> float:
    """Execute ``path`` in place; return the wall time in seconds."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
        store_widget_state=False,
        record_timing=False,
    )
    start = time.perf_counter()
    client.execute()
    elapsed = time.perf_counter() - start
    nb.metadata.pop("widgets", None)
    nbformat.write(nb, path)
    return elapsed


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    for name in argv:
        elapsed = store_outputs(Path(name))
        print(f"{name}: executed and stored in {elapsed:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
