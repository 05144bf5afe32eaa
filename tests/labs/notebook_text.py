"""What a stored notebook says: the text of its outputs and of its prose, for the labs' notebook-claims tests."""

from __future__ import annotations

import json
from pathlib import Path


def stored_text_of(path: Path, separator: str = "") -> str:
    """Every code cell output's text (streams and text/plain), joined with ``separator``."""
    cells = json.loads(Path(path).read_text())["cells"]
    outputs = [output for cell in cells if cell["cell_type"] == "code" for output in cell["outputs"]]
    return separator.join("".join(output.get("text", "")) + "".join(output.get("data", {}).get("text/plain", ""))
                          for output in outputs)


def prose_of(path: Path) -> str:
    """The notebook's markdown cells, one after another."""
    cells = json.loads(Path(path).read_text())["cells"]
    return "\n".join("".join(cell["source"]) for cell in cells if cell["cell_type"] == "markdown")
