"""Where the browser tests find notebooks and fixtures, and where they put screenshots."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
FIXTURES_FOLDER = "e2e_fixtures"  # where the fixtures sit inside the served folder
SCREENSHOTS = Path(os.environ.get("XTLAB_E2E_SCREENSHOTS", REPO / "e2e-screenshots"))


def lab_notebooks() -> list[Path]:
    """Every lab notebook (``NN_*.ipynb``), so a new lab is tested as soon as it lands."""
    return sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
