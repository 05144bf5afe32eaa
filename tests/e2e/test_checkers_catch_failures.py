"""The browser checks can fail: run them on a fixture notebook that is broken on purpose.

tests/e2e/fixtures/broken_on_purpose.ipynb breaks, one cell each, what a learner would see: a
panel whose image never re-draws, a widget whose view nobody ships, a widget output with no model
behind it (only its text repr), and a cell that raises. One kernel runs it all, to keep this fast.
Then a broken setup: JupyterLab without the widget extension, where widgets fall back to text.
"""

from __future__ import annotations

import pytest
from e2e_notebook_page import (
    close_all_documents,
    error_outputs,
    load_lab,
    move_first_control,
    open_notebook,
    run_all_cells,
    unfinished_cells,
    widget_problems,
)
from e2e_paths import FIXTURES_FOLDER

pytestmark = pytest.mark.e2e
WIDGET_EXTENSION = "@jupyter-widgets/jupyterlab-manager"  # what draws widgets in JupyterLab


@pytest.fixture(scope="module")
def broken_page(browser_lab):
    """The page with the broken notebook opened and run (once for this module)."""
    open_notebook(browser_lab.page, f"{FIXTURES_FOLDER}/broken_on_purpose.ipynb")
    run_all_cells(browser_lab.page, timeout_s=60)
    yield browser_lab.page
    close_all_documents(browser_lab.page)
    browser_lab.lab.shutdown_kernels()


def test_a_cell_that_raises_is_reported(broken_page):
    errors = error_outputs(broken_page)
    assert len(errors) == 1 and "ValueError: deliberate failure" in errors[0], errors


def test_cells_after_the_error_are_reported_as_not_run(broken_page):
    assert unfinished_cells(broken_page) == ["cell 10 has no execution count"]


def test_widgets_the_browser_cannot_draw_are_reported(broken_page):
    problems = widget_problems(broken_page, timeout_s=2)
    assert any(problem.startswith("cell 5, output 0") for problem in problems), problems  # unknown view
    assert any(problem.startswith("cell 7, output 0") for problem in problems), problems  # no model
    assert not any(problem.startswith("cell 3,") for problem in problems), problems  # the panel itself renders


def test_a_panel_that_does_not_redraw_is_reported(broken_page):
    move = move_first_control(broken_page, timeout_s=2)
    assert move.control == "slider"
    assert not move.image_changed


def test_widgets_without_the_widget_extension_are_reported(browser_lab):
    page = browser_lab.page.context.new_page()
    try:
        with browser_lab.lab.lab_extensions_disabled([WIDGET_EXTENSION]):
            load_lab(page, browser_lab.lab.lab_url)
        open_notebook(page, f"{FIXTURES_FOLDER}/one_panel.ipynb")
        run_all_cells(page, timeout_s=60)
        problems = widget_problems(page, timeout_s=2)
        assert problems and problems[0].startswith("cell 1, output 0: shown as text"), problems
        assert "VBox(" in problems[0]  # the fallback a learner sees: the widget's repr
    finally:
        page.close()
        browser_lab.lab.shutdown_kernels()
