"""Drive one notebook in a JupyterLab page, and report what a learner would see go wrong.

The checker functions return lists of problems (empty when all is well) instead of asserting,
so the same functions are run on the labs (expecting none) and on broken fixture notebooks
(expecting each failure to be caught).

The page must come from a server started with ``expose_app_in_browser`` (``window.jupyterapp``):
commands run through JupyterLab's own command registry, the way its menus run them.
"""

from __future__ import annotations

import hashlib
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the tests skip, rather than fail to import, where playwright is missing
    from playwright.sync_api import Page

# Text that JupyterLab / ipywidgets show instead of a widget that did not render.
WIDGET_FAILURE_TEXTS = ("Loading widget...", "Error displaying widget", "model not found", "Failed to load view")
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
SAVED_SCREENSHOTS: list[Path] = []  # every screenshot this run saved, for the closing summary

# The current notebook panel, its kernel and its cells, as JupyterLab's own objects.
_CURRENT_PANEL_JS = "const panel = window.jupyterapp.shell.currentWidget;"


def await_in_page(page: Page, promise_js: str, arg=None, timeout_s: float = 60.0):
    """Evaluate ``promise_js`` (a JS expression of ``arg`` giving a promise) and wait at most ``timeout_s``.

    ``page.evaluate`` itself has no time limit: a JupyterLab promise that never settles would hang the run.
    """
    settled = page.evaluate(
        f"""async ([arg, timeoutMs]) => {{
            const work = Promise.resolve({promise_js}).then(value => ({{done: true, value}}));
            const late = new Promise(resolve => setTimeout(() => resolve({{done: false}}), timeoutMs));
            return Promise.race([work, late]);
        }}""",
        [arg, timeout_s * 1000],
    )
    if not settled["done"]:
        raise TimeoutError(f"the page did not finish {promise_js!r} within {timeout_s} s")
    return settled.get("value")


def run_command(page: Page, command: str, args: dict | None = None, timeout_s: float = 60.0) -> None:
    """Execute a JupyterLab command (as its menus do) and wait for it, at most ``timeout_s``."""
    await_in_page(page, f"window.jupyterapp.commands.execute({command!r}, arg || {{}}).then(() => true)", args,
                  timeout_s)


def load_lab(page: Page, url: str, timeout_s: float = 60.0) -> None:
    """Load JupyterLab at ``url`` and wait until its application object is ready.

    JupyterLab rewrites the URL while it starts (``?reset`` is dropped), which can replace the page's
    JavaScript context under a waiting call: such a call is retried until ``timeout_s``.
    """
    from playwright.sync_api import Error as PlaywrightError

    deadline = time.monotonic() + timeout_s
    page.goto(url, timeout=timeout_s * 1000)
    while True:
        remaining = max(deadline - time.monotonic(), 1.0)
        try:
            page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell", timeout=remaining * 1000)
            await_in_page(page, "window.jupyterapp.restored.then(() => true)", timeout_s=remaining)
            return
        except PlaywrightError as err:
            if time.monotonic() >= deadline:
                raise
            print(f"load_lab: retrying after {type(err).__name__}: {str(err).splitlines()[0]}", file=sys.stderr)
            time.sleep(0.5)


def open_notebook(page: Page, path: str, timeout_s: float = 60.0) -> None:
    """Open ``path`` (relative to the server's root) as a learner would, and wait until its kernel is idle."""
    run_command(page, "docmanager:open", {"path": path, "factory": "Notebook"}, timeout_s=timeout_s)
    page.wait_for_function(
        f"""(path) => {{
            {_CURRENT_PANEL_JS}
            const kernel = panel && panel.context && panel.context.path === path
                && panel.sessionContext.session && panel.sessionContext.session.kernel;
            return kernel && kernel.status === 'idle';
        }}""",
        arg=path,
        timeout=timeout_s * 1000,
    )


def close_all_documents(page: Page) -> None:
    """Close every open document without the "save changes?" dialog (the served files are copies)."""
    await_in_page(
        page,
        """(async () => {
            const app = window.jupyterapp;
            for (const widget of [...app.shell.widgets('main')]) if (widget.context) widget.context.model.dirty = false;
            await app.commands.execute('application:close-all');
            return true;
        })()""",
    )


def run_all_cells(page: Page, timeout_s: float = 120.0) -> float:
    """Clear the stored outputs, run every cell (Run > Run All Cells), wait for the kernel; return seconds taken.

    Raises:
        TimeoutError: when the cells have not finished within ``timeout_s``.
    """
    start = time.monotonic()
    run_command(page, "notebook:clear-all-cell-outputs", timeout_s=30)
    # The command's promise settles once the last queued cell has finished.
    finished = page.evaluate(
        """async (timeoutMs) => {
            const run = window.jupyterapp.commands.execute('notebook:run-all-cells').then(() => true);
            const late = new Promise(resolve => setTimeout(() => resolve(false), timeoutMs));
            return Promise.race([run, late]);
        }""",
        timeout_s * 1000,
    )
    if not finished:
        raise TimeoutError(f"the cells had not finished after {timeout_s} s")
    page.wait_for_function(
        f"() => {{ {_CURRENT_PANEL_JS} return panel.sessionContext.session.kernel.status === 'idle'; }}",
        timeout=timeout_s * 1000,
    )
    return time.monotonic() - start


def commit_every_prediction(page: Page, timeout_s: float = 30.0) -> int:
    """Commit every prediction on the page as a learner does: pick the first choice of each question (and a
    verdict for every claim of an audit) and press its commit button. Returns how many commitments were made."""
    committed = 0
    for box in page.locator(".widget-radio-box").all():
        box.locator("input[type=radio]").first.check(timeout=timeout_s * 1000)
    for button in page.locator("button", has_text="Commit my prediction").all():
        if button.is_enabled():
            button.click(timeout=timeout_s * 1000)
            committed += 1
    for select in page.locator(".widget-dropdown:has(label:text-matches('^claim \\d+$')) select").all():
        if select.is_enabled():
            select.select_option(index=1, timeout=timeout_s * 1000)
    for button in page.locator("button", has_text="Commit my verdicts").all():
        if button.is_enabled():
            button.click(timeout=timeout_s * 1000)
            committed += 1
    return committed


def error_outputs(page: Page) -> list[str]:
    """One line per cell that shows an error output: its index, the exception name and value."""
    return page.evaluate(
        f"""() => {{
            {_CURRENT_PANEL_JS}
            const problems = [];
            const cells = panel.content.model.cells;
            for (let i = 0; i < cells.length; i++) {{
                const cell = cells.get(i);
                if (cell.type !== 'code') continue;
                for (const output of cell.outputs.toJSON()) {{
                    if (output.output_type === 'error')
                        problems.push(`cell ${{i}}: ${{output.ename}}: ${{output.evalue}}`);
                }}
            }}
            return problems;
        }}"""
    )


def unfinished_cells(page: Page) -> list[str]:
    """One line per code cell that never ran or is still queued (its prompt is empty or ``[*]``)."""
    return page.evaluate(
        f"""() => {{
            {_CURRENT_PANEL_JS}
            const problems = [];
            const cells = panel.content.model.cells;
            for (let i = 0; i < cells.length; i++) {{
                const cell = cells.get(i);
                if (cell.type === 'code' && cell.sharedModel.getSource().trim() && !cell.executionCount)
                    problems.push(`cell ${{i}} has no execution count`);
            }}
            return problems;
        }}"""
    )


def widget_problems(page: Page, timeout_s: float = 15.0) -> list[str]:
    """Problems with the notebook's widget outputs; waits up to ``timeout_s`` for them to render.

    Every output that carries the widget MIME type must be drawn by the widget manager: its
    output node holds a widget view (``.jupyter-widgets`` with a ``widget-*`` class), not the
    text/plain fallback (the model's repr) and none of the loading or error texts.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        problems = page.evaluate(
            f"""([mime, failureTexts]) => {{
                {_CURRENT_PANEL_JS}
                const problems = [];
                panel.content.widgets.forEach((cell, i) => {{
                    if (cell.model.type !== 'code') return;
                    const outputs = cell.model.outputs.toJSON();
                    const children = cell.node.querySelectorAll('.jp-OutputArea-child');
                    outputs.forEach((output, k) => {{
                        if (!output.data || !output.data[mime]) return;
                        const node = children[k] && children[k].querySelector('.jp-OutputArea-output');
                        const where = `cell ${{i}}, output ${{k}}`;
                        if (!node) {{ problems.push(`${{where}}: not on the page`); return; }}
                        if (node.dataset.mimeType === 'text/plain')
                            problems.push(`${{where}}: shown as text, not a widget: ${{node.innerText.slice(0, 80)}}`);
                        else if (!node.querySelector('.jupyter-widgets[class*="widget-"]'))
                            problems.push(`${{where}}: holds no widget view`);
                        for (const text of failureTexts)
                            if (node.innerText.includes(text)) problems.push(`${{where}}: shows "${{text}}"`);
                    }});
                }});
                return problems;
            }}""",
            [WIDGET_MIME, list(WIDGET_FAILURE_TEXTS)],
        )
        if not problems or time.monotonic() > deadline:
            return problems
        time.sleep(0.25)


@dataclass
class ControlMove:
    """What happened when a control of the first panel moved.

    Args:
        control: which kind of control moved (``slider``, ``checkbox``, ``dropdown``, ``toggle``).
        image_changed: whether the panel's image bytes changed within the time limit.
        seconds: time from the move until the new image (or until giving up).
    """

    control: str
    image_changed: bool
    seconds: float


# Controls a panel may have, and the first output that holds one of them and an image: a LabPanel.
_CONTROLS = ".widget-slider, .widget-checkbox, .widget-dropdown, .widget-toggle-button, .widget-toggle-buttons"
_PANEL_IMAGE = "img.widget-image"
_FIRST_PANEL_JS = f"""
    const panelNode = [...document.querySelectorAll('.jp-OutputArea-output')]
      .find(node => node.querySelector('{_PANEL_IMAGE}') && node.querySelector('{_CONTROLS}'));
"""


def panel_image_digest(page: Page) -> str:
    """SHA-256 of the PNG bytes the first panel's <img> shows (empty string when there is none)."""
    payload = page.evaluate(
        f"""async () => {{
            {_FIRST_PANEL_JS}
            const img = panelNode && panelNode.querySelector('{_PANEL_IMAGE}');
            if (!img || !img.src) return [];
            const bytes = new Uint8Array(await (await fetch(img.src)).arrayBuffer());
            return Array.from(bytes);
        }}"""
    )
    return hashlib.sha256(bytes(payload)).hexdigest() if payload else ""


def shows_a_panel(page: Page) -> bool:
    """Whether the page shows a panel: a widget output with an image and a control."""
    return page.evaluate(f"() => {{ {_FIRST_PANEL_JS} return !!panelNode; }}")


def move_first_control(page: Page, timeout_s: float = 20.0) -> ControlMove:
    """Move one control of the first panel as a learner would, and wait for its image to change.

    Prefers a slider (focus its handle, press ArrowRight, or ArrowLeft at the maximum), then a
    checkbox, a toggle button, a dropdown (next option).
    """
    if not shows_a_panel(page):
        raise LookupError("the notebook shows no panel (a widget output with an image and a control)")
    before = panel_image_digest(page)
    panel = (
        page.locator(".jp-OutputArea-output")
        .filter(has=page.locator(_PANEL_IMAGE))
        .filter(has=page.locator(_CONTROLS))
        .first
    )
    panel.scroll_into_view_if_needed()
    kind = _move_a_control(panel)
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        after = panel_image_digest(page)
        if after and after != before:
            return ControlMove(kind, True, time.monotonic() - start)
        time.sleep(0.1)
    return ControlMove(kind, False, time.monotonic() - start)


def _move_a_control(panel) -> str:
    sliders = panel.locator(".widget-slider .noUi-handle")
    if sliders.count():
        handle = sliders.first
        at_max = handle.get_attribute("aria-valuenow") == handle.get_attribute("aria-valuemax")
        handle.focus()
        handle.press("ArrowLeft" if at_max else "ArrowRight")
        return "slider"
    checkboxes = panel.locator(".widget-checkbox input[type=checkbox]")
    if checkboxes.count():
        checkboxes.first.click()
        return "checkbox"
    # a ToggleButtons' buttons carry .widget-toggle-button too: click one that is not the active choice
    choices = panel.locator(".widget-toggle-buttons button:not(.mod-active)")
    toggles = choices if choices.count() else panel.locator(".widget-toggle-button")
    if toggles.count():
        toggles.first.click()
        return "toggle"
    dropdown = panel.locator(".widget-dropdown select").first
    options = dropdown.locator("option").all_inner_texts()
    current = dropdown.evaluate("select => select.selectedIndex")
    dropdown.select_option(index=(current + 1) % len(options))
    return "dropdown"


def drag_first_slider_end_to_end(page: Page, timeout_s: float = 20.0) -> tuple[bool, str, str]:
    """Drag the first panel's first slider with the mouse from its minimum to its maximum, as a learner would.

    Returns (the panel's image changed, the slider's value after the drag, its maximum).
    """
    panel = (
        page.locator(".jp-OutputArea-output")
        .filter(has=page.locator(_PANEL_IMAGE))
        .filter(has=page.locator(".widget-slider"))
        .first
    )
    panel.scroll_into_view_if_needed()
    handle = panel.locator(".widget-slider .noUi-handle").first
    track = panel.locator(".widget-slider .noUi-base").first.bounding_box()
    knob = handle.bounding_box()
    y = knob["y"] + knob["height"] / 2
    page.mouse.move(knob["x"] + knob["width"] / 2, y)
    page.mouse.down()
    page.mouse.move(track["x"] - 20, y, steps=10)  # to the left end ...
    page.mouse.move(track["x"] + track["width"] + 20, y, steps=30)  # ... and across to the right end
    before = panel_image_digest(page)
    page.mouse.up()  # sliders report on release
    start = time.monotonic()
    changed = False
    while time.monotonic() - start < timeout_s and not changed:
        after = panel_image_digest(page)
        changed = bool(after) and after != before
        time.sleep(0.1)
    return changed, handle.get_attribute("aria-valuenow"), handle.get_attribute("aria-valuemax")


def save_screenshot(page: Page, folder: Path, name: str) -> Path:
    """Save what the page shows now as ``folder/name.png``; return the path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path))
    SAVED_SCREENSHOTS.append(path)
    return path
