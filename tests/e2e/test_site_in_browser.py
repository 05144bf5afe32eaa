"""The course website, built offline from the stored notebooks, opened page by page in headless Chromium.

Every page loads without a console error, every image on it loaded (each panel's figure among them), and no
internal link is broken. Skips like the other browser tests when Chromium is missing (a failure under
XTLAB_E2E_REQUIRED=1).
"""

from __future__ import annotations

import functools
import http.server
import json
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlparse

import pytest
from e2e_paths import REPO

pytestmark = pytest.mark.e2e


def checkout_status() -> str:
    return subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=REPO, capture_output=True,
                          text=True, check=True).stdout


BUILD_CHANGES: dict[str, str] = {}


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    output = tmp_path_factory.mktemp("site") / "html"
    before = checkout_status()
    subprocess.run([sys.executable, str(REPO / "tools" / "build_site.py"), "--output", str(output)], check=True,
                   timeout=600)
    BUILD_CHANGES["before"], BUILD_CHANGES["after"] = before, checkout_status()
    return output


def test_building_the_site_leaves_the_checkout_as_it_was(site):
    assert BUILD_CHANGES["after"] == BUILD_CHANGES["before"]


def predictions_stored(notebook: Path) -> list[str]:
    """The whole plain text of every prediction a stored notebook shows."""
    cells = json.loads(notebook.read_text())["cells"]
    texts = ["".join(output.get("data", {}).get("text/plain", "")) for cell in cells
             for output in cell.get("outputs", [])]
    return [text for text in texts if text.startswith("Predict:")]


def test_predictions_and_long_lines_are_shown_whole(site, served, browser_page):
    problems = []
    for folder in ("notebooks", "solutions"):
        for notebook in sorted((REPO / folder).glob("*.ipynb")):
            browser_page.goto(f"{served}/{folder}/{notebook.stem}.html", wait_until="load", timeout=30_000)
            page_text = " ".join(browser_page.inner_text("body").split())
            for prediction in predictions_stored(notebook):
                if " ".join(prediction.split()) not in page_text:
                    problems.append(f"{folder}/{notebook.stem}: prediction not shown whole: {prediction[:80]!r}")
            clipped = browser_page.eval_on_selector_all(
                "pre", "blocks => blocks.filter(b => b.scrollWidth > b.clientWidth + 1).map(b => b.innerText)")
            problems += [f"{folder}/{notebook.stem}: a line is clipped in {text[:60]!r}" for text in clipped]
    assert problems == [], "\n".join(problems)


@pytest.fixture(scope="module")
def served(site: Path):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def browser_page(browser_lab):
    """A new tab in the browser the JupyterLab tests use (one Playwright per session: a second one would clash)."""
    page = browser_lab.page.context.new_page()
    try:
        yield page
    finally:
        page.close()


def figure_count(notebook: Path) -> tuple[int, int]:
    """(stored figures, of which panels): every output with an image, and those of LabPanels."""
    outputs = [output.get("data", {}) for cell in json.loads(notebook.read_text())["cells"]
               if cell["cell_type"] == "code" for output in cell.get("outputs", [])]
    figures = [data for data in outputs if "image/png" in data]
    return len(figures), sum("".join(data.get("text/plain", "")).startswith("LabPanel(") for data in figures)


def test_every_page_loads_with_its_images_and_links(site, served, browser_page):
    pages = sorted(page for page in site.rglob("*.html") if not page.relative_to(site).parts[0].startswith("_"))
    assert {"index.html", "teaching.html", "api.html"} <= {page.name for page in pages}
    problems = []
    for path in pages:
        relative = path.relative_to(site).as_posix()
        errors: list[str] = []
        handler = lambda msg, errors=errors: errors.append(msg.text) if msg.type == "error" else None  # noqa: E731
        browser_page.on("console", handler)
        browser_page.goto(f"{served}/{relative}", wait_until="load", timeout=30_000)
        browser_page.remove_listener("console", handler)
        if errors:
            problems.append(f"{relative}: console errors {errors[:3]}")
        images = browser_page.eval_on_selector_all(
            "img", "imgs => imgs.map(i => ({src: i.getAttribute('src'), ok: i.complete && i.naturalWidth > 0}))")
        problems += [f"{relative}: image {image['src']} did not load" for image in images if not image["ok"]]
        for folder in ("notebooks", "solutions"):
            if relative.startswith(f"{folder}/"):
                figures = [image for image in images if image["src"] and "_images/" in image["src"]]
                expected, panels = figure_count(REPO / folder / (Path(relative).stem + ".ipynb"))
                if len(figures) != expected:
                    problems.append(f"{relative}: {len(figures)} figures shown, but the notebook stores {expected} "
                                    f"({panels} of them panels)")
        hrefs = browser_page.eval_on_selector_all("a[href]", "links => links.map(a => a.getAttribute('href'))")
        for href in hrefs:
            target, _ = urldefrag(href)
            if not target or urlparse(target).scheme or target.startswith(("mailto:", "//")):
                continue
            if not (path.parent / unquote(target)).resolve().exists():
                problems.append(f"{relative}: broken internal link {href}")
    assert problems == [], "\n".join(problems)
