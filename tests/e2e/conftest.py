"""Fixtures for the browser tests: one JupyterLab server and one headless Chromium for the whole run.

Both are shut down at the end even when a test fails, and the run then checks that no process it
started (server, kernels, browser) is left. Without Chromium or Playwright the tests skip and say
how to enable them; XTLAB_E2E_REQUIRED=1 turns that skip into a failure (for CI).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from e2e_jupyter_server import RunningLab, start_lab, stop_lab
from e2e_notebook_page import SAVED_SCREENSHOTS, close_all_documents, load_lab
from e2e_paths import FIXTURES, FIXTURES_FOLDER, NOTEBOOKS, SCREENSHOTS
from e2e_processes import MARKER_VARIABLE, end_marked_processes

# The fixture notebooks are broken on purpose: only the browser tests open them, never nbval.
collect_ignore_glob = ["fixtures/*"]

CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
ENABLE_HINT = "install Debian's chromium (`apt-get install chromium`) to run the browser tests"


def find_chromium() -> str | None:
    """The system Chromium, or ``XTLAB_CHROMIUM`` when set; never a browser Playwright downloads."""
    override = os.environ.get("XTLAB_CHROMIUM")
    candidates = [override] if override else [shutil.which("chromium"), "/usr/bin/chromium"]
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)


def _skip_or_fail(reason: str) -> None:
    if os.environ.get("XTLAB_E2E_REQUIRED") == "1":
        pytest.fail(f"XTLAB_E2E_REQUIRED=1 but {reason}")
    pytest.skip(reason)


@dataclass
class BrowserLab:
    """The running server, the browser page showing JupyterLab, and what the page logged."""

    lab: RunningLab
    page: object  # playwright.sync_api.Page
    screenshots: Path
    console_errors: list[str] = field(default_factory=list)


@pytest.fixture(scope="session")
def browser_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserLab]:
    """JupyterLab serving a copy of notebooks/ (plus the fixtures), open in headless Chromium."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _skip_or_fail(f"the playwright Python package is missing (`pip install -e '.[test]'`); also {ENABLE_HINT}")
    chromium = find_chromium()
    if chromium is None:
        _skip_or_fail(f"no Chromium found: {ENABLE_HINT}")

    scratch = tmp_path_factory.mktemp("e2e")
    root = scratch / "served"
    shutil.copytree(NOTEBOOKS, root, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    shutil.copytree(FIXTURES, root / FIXTURES_FOLDER)
    for old in SCREENSHOTS.glob("*.png"):
        old.unlink()
    marker = uuid.uuid4().hex
    lab = playwright = browser = None
    try:
        lab = start_lab(root, scratch / "lab", marker)
        playwright = sync_playwright().start()
        browser = playwright.chromium.launch_persistent_context(
            user_data_dir=tempfile.mkdtemp(dir=scratch),  # a fresh profile: no state from any other run
            executable_path=chromium,
            args=CHROMIUM_ARGS,
            env={**os.environ, MARKER_VARIABLE: marker},
            viewport={"width": 1280, "height": 900},
        )
        page = browser.pages[0] if browser.pages else browser.new_page()
        state = BrowserLab(lab, page, SCREENSHOTS)
        page.on("console", lambda msg: state.console_errors.append(msg.text) if msg.type == "error" else None)
        load_lab(page, lab.lab_url)
        yield state
    finally:
        _shut_down(browser, playwright, lab)
        leftovers = end_marked_processes(marker)
        assert not leftovers, f"processes left behind after the e2e run (now killed): {leftovers}"


def _shut_down(browser, playwright, lab: RunningLab | None) -> None:
    for close in (browser and browser.close, playwright and playwright.stop, lab and (lambda: stop_lab(lab))):
        if close:
            try:
                close()
            except Exception as err:  # keep closing the rest; leftovers are killed and reported after
                print(f"e2e shutdown: {err!r}")


@pytest.fixture
def notebook_page(browser_lab: BrowserLab) -> Iterator[BrowserLab]:
    """The shared page, emptied after each test: documents closed, kernels shut down."""
    browser_lab.console_errors.clear()
    yield browser_lab
    close_all_documents(browser_lab.page)
    browser_lab.lab.shutdown_kernels()


def pytest_terminal_summary(terminalreporter) -> None:
    if SAVED_SCREENSHOTS:
        terminalreporter.write_line(f"e2e screenshots ({len(SAVED_SCREENSHOTS)} saved): {SCREENSHOTS}")
