"""A JupyterLab server for the browser tests: loopback port, random token, nothing fetched from outside.

The server runs from the project's own environment (``sys.executable``), serves a temporary
folder (a copy of the notebooks, so the stored ones are never modified), and keeps its settings,
workspaces and runtime files in temporary folders too, so a person's own JupyterLab setup does
not leak in and the run leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from e2e_processes import MARKER_VARIABLE

# Settings a learner would not change, but a test needs: every cell attached to the page (so the
# DOM holds every output), and no news or update checks (no network, no pop-ups).
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
        "doNotDisturbMode": True,
    },
}


@dataclass
class RunningLab:
    """A started JupyterLab server.

    Args:
        process: the ``jupyter lab`` process (leader of its own process group).
        url: base URL, e.g. ``http://127.0.0.1:8891/``.
        token: the server's access token.
        root: the folder the server serves.
        config_dir: the server's JUPYTER_CONFIG_DIR (read again on every page load).
        log_path: the server's combined stdout/stderr.
    """

    process: subprocess.Popen
    url: str
    token: str
    root: Path
    config_dir: Path
    log_path: Path

    def api(self, path: str, method: str = "GET", timeout: float = 10.0) -> object:
        """Call the server's REST API (``path`` like ``api/sessions``) and return the decoded JSON."""
        request = urllib.request.Request(
            self.url + path, method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
        return json.loads(body) if body else None

    @property
    def lab_url(self) -> str:
        """The URL that opens JupyterLab with a fresh workspace and logs in with the token."""
        return f"{self.url}lab?token={self.token}&reset"

    def shutdown_kernels(self) -> threading.Thread:
        """Shut down every kernel in the background (the next notebook need not wait); return the thread.

        Each notebook then starts from a fresh kernel and memory stays low; stop_lab ends any
        kernel still running.
        """
        sessions, kernels = self.api("api/sessions"), self.api("api/kernels")

        def shut_down() -> None:
            try:
                for session in sessions:
                    self.api(f"api/sessions/{session['id']}", method="DELETE", timeout=30)
                for kernel in kernels:
                    self.api(f"api/kernels/{kernel['id']}", method="DELETE", timeout=30)
            except (urllib.error.URLError, ConnectionError, TimeoutError):  # already gone, or the server is stopping
                pass

        thread = threading.Thread(target=shut_down, daemon=True)
        thread.start()
        return thread

    @contextmanager
    def lab_extensions_disabled(self, names: list[str]) -> Iterator[None]:
        """Pages loaded inside this block run without the JupyterLab extensions ``names``."""
        page_config = self.config_dir / "labconfig" / "page_config.json"
        page_config.parent.mkdir(parents=True, exist_ok=True)
        page_config.write_text(json.dumps({"disabledExtensions": {name: True for name in names}}))
        try:
            yield
        finally:
            page_config.unlink()

    def log_tail(self, chars: int = 3000) -> str:
        """The end of the server's log, for failure messages."""
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""


def free_loopback_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_lab(root: Path, scratch: Path, marker: str, timeout_s: float = 60.0) -> RunningLab:
    """Start ``jupyter lab`` serving ``root``; return once ``/api/status`` answers.

    Args:
        root: the folder to serve (a temporary copy of the notebooks).
        scratch: an empty temporary folder for settings, workspaces, runtime files and the log.
        marker: the run's marker; the server and its kernels inherit it (see e2e_processes).
        timeout_s: seconds to wait for the server to answer.
    """
    if not root.is_dir():
        raise ValueError(f"root must be an existing folder, but got {root}")
    folders = [scratch / name for name in ("settings", "workspaces", "runtime", "config")]
    settings_dir, workspaces_dir, runtime_dir, config_dir = folders
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    for name, values in LAB_SETTINGS.items():
        target = settings_dir / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(values))
    port, token = free_loopback_port(), secrets.token_hex(16)
    command = [
        sys.executable, "-m", "jupyter", "lab", "--no-browser",
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}", "--ServerApp.terminals_enabled=False",
        "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",  # the default one looks up extensions on PyPI
        f"--LabApp.user_settings_dir={settings_dir}", f"--LabApp.workspaces_dir={workspaces_dir}",
    ]  # fmt: skip
    if os.geteuid() == 0:  # CI runs as root; jupyter refuses that unless told
        command.append("--allow-root")
    # A private config dir keeps a person's ~/.jupyter out; the data dirs stay, they hold the extensions.
    env = {
        **os.environ,
        MARKER_VARIABLE: marker,
        "JUPYTER_RUNTIME_DIR": str(runtime_dir),
        "JUPYTER_CONFIG_DIR": str(config_dir),
    }
    env.pop("JUPYTER_TOKEN", None)
    log_path = scratch / "jupyter-lab.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
    lab = RunningLab(process, f"http://127.0.0.1:{port}/", token, root, config_dir, log_path)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"jupyter lab exited with code {process.returncode}:\n{lab.log_tail()}")
        try:
            lab.api("api/status", timeout=2.0)
            return lab
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.3)
    stop_lab(lab)
    raise RuntimeError(f"jupyter lab did not answer within {timeout_s} s:\n{lab.log_tail()}")


def stop_lab(lab: RunningLab, grace_s: float = 10.0) -> None:
    """Stop the server cleanly (it shuts its kernels down), else kill its whole process group."""
    if lab.process.poll() is None:
        try:
            lab.api("api/shutdown", method="POST", timeout=5.0)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            lab.process.send_signal(signal.SIGTERM)
        try:
            lab.process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(lab.process.pid, signal.SIGKILL)
    except ProcessLookupError:  # the group is already gone
        pass
    lab.process.wait(timeout=grace_s)
