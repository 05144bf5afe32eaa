"""A class on JupyterHub (deploy/): two students log in, pull the course with the nbgitpuller link, run lab 01.

The hub is deploy/jupyterhub_config.py as `make hub` starts it (shared password, one local server per student,
homes in a scratch folder), with the course repository being this checkout (nbgitpuller clones its committed
branch). Student A saves an edit in their copy of lab 01; student B's copy, pulled afterwards, must not show it,
and A's copy keeps it when A follows the link again.
Per student, the test prints what the servers need: RSS of the server and its kernel after lab 01 (now and peak)
and the CPU seconds of running the lab (deploy/README.md derives the Kubernetes limits from them).

Runs only when selected, `make hub-test` (pytest -m hub): it starts a hub, two servers and a browser (minutes),
more than the default test run's budget. Skips, saying what is missing, without jupyterhub, nbgitpuller,
configurable-http-proxy (npm), playwright or Chromium.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
from conftest import CHROMIUM_ARGS, find_chromium
from e2e_jupyter_server import LAB_SETTINGS, free_loopback_port
from e2e_notebook_page import (
    await_in_page,
    commit_every_prediction,
    error_outputs,
    load_lab,
    open_notebook,
    run_all_cells,
    run_command,
    save_screenshot,
    unfinished_cells,
)
from e2e_paths import REPO, SCREENSHOTS
from e2e_processes import MARKER_VARIABLE, end_marked_processes

pytestmark = [pytest.mark.hub, pytest.mark.e2e, pytest.mark.slow]

DEPLOY = REPO / "deploy"
PROXY = DEPLOY / ".proxy" / "node_modules" / ".bin" / "configurable-http-proxy"
LAB = "notebooks/01_layer_dropout.ipynb"
PASSWORD = "xtlab-test-" + secrets.token_hex(4)
SPAWN_AND_PULL_LIMIT_S = 180.0
RUN_ALL_LIMIT_S = 180.0


def _skip_unless_ready(config: pytest.Config) -> None:
    if "hub" not in (config.getoption("markexpr") or ""):
        pytest.skip("the class hub test runs only when selected: `make hub-test` (pytest -m hub)")
    missing = []
    for module, package in (("jupyterhub", "jupyterhub"), ("nbgitpuller", "nbgitpuller"), ("playwright", "playwright")):
        try:
            __import__(module)
        except ImportError:
            missing.append(f"the {package} package (`.venv/bin/pip install -e '.[hub,test]'`)")
    if not PROXY.exists():
        missing.append("configurable-http-proxy (`npm install --prefix deploy/.proxy configurable-http-proxy`)")
    if find_chromium() is None:
        missing.append("Chromium (`apt-get install chromium`)")
    if missing:
        pytest.skip("the class hub test needs " + ", ".join(missing))


@dataclass
class StudentRun:
    name: str
    home: Path
    seconds_to_lab: float  # login, server start, clone, JupyterLab loaded
    run_all_seconds: float
    cpu_seconds: float  # server + kernel, while the lab ran (both Run Alls)
    rss_mib: float  # server + kernel, after the lab ran
    peak_rss_mib: float  # sum of each process's peak RSS (VmHWM)


def _student_processes(name: str, marker: str) -> list:
    import psutil

    found = []
    for process in psutil.process_iter():
        try:
            environ = process.environ()
        except (psutil.Error, OSError):
            continue
        if environ.get(MARKER_VARIABLE) == marker and environ.get("JUPYTERHUB_USER") == name:
            found.append(process)
    return found


def _cpu_seconds(processes: list) -> float:
    total = 0.0
    for process in processes:
        times = process.cpu_times()
        total += times.user + times.system + times.children_user + times.children_system
    return total


def _peak_rss_bytes(process) -> int:
    for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def _start_hub(scratch: Path, marker: str) -> tuple[subprocess.Popen, str, Path]:
    port = free_loopback_port()
    env = {
        **os.environ,
        MARKER_VARIABLE: marker,
        "XTLAB_HUB_SCRATCH": str(scratch),
        "XTLAB_HUB_PASSWORD": PASSWORD,
        "XTLAB_HUB_PORT": str(port),
        "XTLAB_HUB_API_PORT": str(free_loopback_port()),
        "XTLAB_HUB_PROXY_API_PORT": str(free_loopback_port()),
        "XTLAB_HUB_EXPOSE_APP": "1",
    }
    for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_RUNTIME_DIR", "JUPYTER_TOKEN", "JUPYTERHUB_API_TOKEN"):
        env.pop(name, None)
    log_path = scratch / "jupyterhub.log"
    with log_path.open("wb") as log:
        hub = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", str(DEPLOY / "jupyterhub_config.py")],
            cwd=scratch, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if hub.poll() is not None:
            raise RuntimeError(f"jupyterhub exited with code {hub.returncode}:\n{_tail(log_path)}")
        try:
            with urllib.request.urlopen(f"{url}/hub/api", timeout=2) as response:
                if response.status == 200:
                    return hub, url, log_path
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.3)
    raise RuntimeError(f"jupyterhub did not answer within 60 s:\n{_tail(log_path)}")


def _tail(path: Path, chars: int = 3000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else ""


def _stop_hub(hub: subprocess.Popen) -> None:
    if hub.poll() is None:
        hub.send_signal(signal.SIGTERM)  # the hub stops the students' servers and the proxy
        try:
            hub.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(hub.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    hub.wait(timeout=10)


def _first_cell_source(page) -> str:
    cells = "window.jupyterapp.shell.currentWidget.content.model.cells"
    return page.evaluate(f"() => {cells}.get(0).sharedModel.getSource()")


def _student_works_through_lab_01(browser, hub_url: str, link: str, name: str, home: Path, marker: str):
    """Log in as ``name`` through the nbgitpuller link, run lab 01 in their copy; return the page and numbers."""
    # JupyterLab settings a test needs (every cell attached to the page, no news): in the student's own home
    for setting, values in LAB_SETTINGS.items():
        target = home / ".jupyter" / "lab" / "user-settings" / setting
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(values))
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    start = time.monotonic()
    page.goto(f"{hub_url}/hub/login?next={quote(link.removeprefix(hub_url), safe='')}")
    page.fill("#username_input", name)
    page.fill("#password_input", PASSWORD)
    page.click("#login_submit")
    # the hub starts the server, nbgitpuller clones the course, then JupyterLab opens the notebook
    page.wait_for_url(f"**/user/{name}/lab/tree/xtlab/{LAB}*", timeout=SPAWN_AND_PULL_LIMIT_S * 1000)
    load_lab(page, page.url)
    path = f"xtlab/{LAB}"
    open_notebook(page, path, timeout_s=120)
    seconds_to_lab = time.monotonic() - start
    assert (home / path).is_file(), f"{name}: nbgitpuller did not put the course in {home / 'xtlab'}"

    processes = _student_processes(name, marker)
    assert len(processes) >= 2, f"{name}: expected a server and a kernel, found {[p.cmdline() for p in processes]}"
    cpu_start = _cpu_seconds(processes)
    seconds = run_all_cells(page, timeout_s=RUN_ALL_LIMIT_S)
    cpu_first = _cpu_seconds(processes) - cpu_start
    commit_every_prediction(page)  # as a learner does; the held-back cells then run
    seconds += run_all_cells(page, timeout_s=RUN_ALL_LIMIT_S)
    cpu = _cpu_seconds(processes) - cpu_start
    rss = sum(p.memory_info().rss for p in processes)
    peak = sum(_peak_rss_bytes(p) for p in processes)
    split = ", ".join(f"{' '.join(p.cmdline()[:2])[-60:]}: {p.memory_info().rss / 2**20:.0f} MiB" for p in processes)
    errors, unfinished = error_outputs(page), unfinished_cells(page)
    assert not errors, f"{name}: lab 01 shows errors: {errors}"
    assert not unfinished, f"{name}: cells of lab 01 did not run: {unfinished}"
    run = StudentRun(name, home, seconds_to_lab, seconds, cpu, rss / 2**20, peak / 2**20)
    print(
        f"{name}: logged in, server started, course pulled, lab open in {run.seconds_to_lab:.1f} s; lab 01 Run All "
        f"twice {run.run_all_seconds:.1f} s, {run.cpu_seconds:.1f} CPU s; server + kernel RSS "
        f"{run.rss_mib:.0f} MiB now, {run.peak_rss_mib:.0f} MiB peak ({len(processes)} processes)\n"
        f"  CPU s: first Run All (predictions uncommitted) {cpu_first:.1f}, second {cpu - cpu_first:.1f}; RSS: {split}"
    )
    return context, page, run


def test_two_students_pull_the_course_and_run_lab_01_in_their_own_copies(request, tmp_path_factory):
    _skip_unless_ready(request.config)
    from playwright.sync_api import sync_playwright

    sys.path.insert(0, str(DEPLOY))
    from pull_link import pull_link

    started = time.monotonic()
    scratch = tmp_path_factory.mktemp("hub")
    marker = uuid.uuid4().hex
    hub = playwright = browser = None
    pages = {}
    try:
        hub, hub_url, log_path = _start_hub(scratch, marker)
        link = pull_link(hub_url, REPO.as_uri(), "main", LAB)
        playwright = sync_playwright().start()
        browser = playwright.chromium.launch(executable_path=find_chromium(), args=CHROMIUM_ARGS,
                                             env={**os.environ, MARKER_VARIABLE: marker})
        homes = {name: scratch / "home" / name for name in ("student-a", "student-b")}

        _, page_a, run_a = _student_works_through_lab_01(browser, hub_url, link, "student-a", homes["student-a"],
                                                         marker)
        pages["student-a"] = page_a
        # student A writes in their copy and saves
        edit = f"# student A's note {marker}"
        await_in_page(
            page_a,
            """(() => {
                const cell = window.jupyterapp.shell.currentWidget.content.model.cells.get(0);
                cell.sharedModel.setSource(arg + '\\n' + cell.sharedModel.getSource());
                return true;
            })()""",
            edit,
        )
        run_command(page_a, "docmanager:save")
        copy_a, copy_b = (homes[name] / "xtlab" / LAB for name in ("student-a", "student-b"))
        deadline = time.monotonic() + 30
        while edit not in copy_a.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert edit in copy_a.read_text(), "student A's saved edit is not in their copy"

        _, page_b, run_b = _student_works_through_lab_01(browser, hub_url, link, "student-b", homes["student-b"],
                                                         marker)
        pages["student-b"] = page_b
        assert edit not in copy_b.read_text(), "student A's edit appears in student B's copy"
        assert edit not in _first_cell_source(page_b), "student B's JupyterLab shows student A's edit"
        assert edit not in (REPO / LAB).read_text(), "student A's edit reached the course repository"
        assert edit in copy_a.read_text(), "student A's copy lost their edit"
        # student A follows the link again (as each class starts): nbgitpuller pulls and keeps their edit
        page_a.goto(link)
        page_a.wait_for_url(f"**/user/student-a/lab/tree/xtlab/{LAB}*", timeout=SPAWN_AND_PULL_LIMIT_S * 1000)
        assert edit in copy_a.read_text(), "following the link again lost student A's edit"
        print(f"class hub test: {time.monotonic() - started:.1f} s for two students")
        assert run_a.home != run_b.home
    except Exception:
        if hub is not None:
            print(f"jupyterhub log:\n{_tail(log_path)}")
        raise
    finally:
        for name, page in pages.items():
            try:
                save_screenshot(page, SCREENSHOTS, f"hub_{name}")
            except Exception as err:
                print(f"screenshot of {name}: {err!r}")
        for close in (browser and browser.close, playwright and playwright.stop, hub and (lambda: _stop_hub(hub))):
            if close:
                try:
                    close()
                except Exception as err:
                    print(f"hub test shutdown: {err!r}")
        leftovers = end_marked_processes(marker)
        assert not leftovers, f"processes left behind after the hub test (now killed): {leftovers}"
