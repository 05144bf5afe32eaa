"""Readable without a kernel: every panel's stored output carries its figure, and an HTML export shows it."""

import base64
import json
from pathlib import Path

import nbformat
import pytest
from nbconvert import HTMLExporter

from xtlab.catalog import LABS

ROOT = Path(__file__).resolve().parents[1]
WIDGET = "application/vnd.jupyter.widget-view+json"
NOTEBOOKS = [ROOT / folder / lab.notebook for folder in ("notebooks", "solutions") for lab in LABS]


def panel_outputs(path: Path) -> list[dict]:
    cells = json.loads(path.read_text())["cells"]
    return [output for cell in cells if cell["cell_type"] == "code" for output in cell["outputs"]
            if WIDGET in output.get("data", {}) and "".join(output["data"]["text/plain"]).startswith("LabPanel(")]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: f"{path.parent.name}/{path.stem}")
def test_every_panel_shows_its_figure_in_an_html_export(path):
    panels = panel_outputs(path)
    if path.stem != "00_start_here":
        assert panels, "every lab has at least one panel"
    html, _ = HTMLExporter().from_notebook_node(nbformat.read(path, as_version=4))
    for output in panels:
        png = "".join(output["data"]["image/png"]).replace("\n", "")
        assert base64.b64decode(png).startswith(b"\x89PNG")
        assert png in html.replace("\n", "")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: f"{path.parent.name}/{path.stem}")
def test_stored_notebooks_stay_small(path):
    assert path.stat().st_size <= 2 * 2**20
    cells = json.loads(path.read_text())["cells"]
    for cell in cells:
        for output in cell.get("outputs", []):
            png = "".join(output.get("data", {}).get("image/png", ""))
            assert len(base64.b64decode(png)) <= 100 * 2**10
