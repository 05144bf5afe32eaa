"""Check that Binder can build the labs from binder/ alone: resolve, install, import, run the tour.

Binder (repo2docker) builds a fresh environment from ``binder/runtime.txt`` (the Python version)
and ``binder/requirements.txt`` (run from the repository root, so ``-e .`` installs the project).
This script does the same in a scratch venv: from a copy of the repository's files, it installs
torch first (this machine's local CPU build of the pinned version stands in for the index's CUDA build of
several GB; index lines, if a lock ever has any, are dropped), then the requirements, then
imports xtlab and executes ``notebooks/00_start_here.ipynb`` with that venv's own kernel.

Usage:
    python tools/binder_check.py                # the full check (~3 minutes: it installs torch)
    python tools/binder_check.py --dry-run      # only resolve the requirements (under a minute)
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BINDER = REPO / "binder"
TORCH_SPEC = os.environ.get("XTLAB_BINDER_TORCH", "torch==2.13.0")  # the local CPU build on the lab machines
INDEX_OPTIONS = ("--extra-index-url", "--index-url", "-i ")
START_HERE = "notebooks/00_start_here.ipynb"


def runtime_python(binder: Path = BINDER) -> tuple[int, int]:
    """The (major, minor) Python version ``runtime.txt`` asks for, e.g. ``python-3.11`` -> (3, 11)."""
    text = (binder / "runtime.txt").read_text().strip()
    match = re.fullmatch(r"python-(\d+)\.(\d+)", text)
    if match is None:
        raise ValueError(f"binder/runtime.txt must read like 'python-3.11', but got {text!r}")
    return int(match[1]), int(match[2])


def requirement_lines(binder: Path = BINDER) -> list[str]:
    """The requirement lines of ``requirements.txt``, without comments and blank lines."""
    lines = [line.split("#", 1)[0].strip() for line in (binder / "requirements.txt").read_text().splitlines()]
    return [line for line in lines if line]


def local_requirements(binder: Path = BINDER) -> list[str]:
    """The requirements with the index options dropped: the indexes set up on this machine serve them."""
    return [line for line in requirement_lines(binder) if not line.startswith(INDEX_OPTIONS)]


def copy_repository(target: Path, repo: Path = REPO) -> Path:
    """Copy the files Binder would see (tracked, plus untracked ones git does not ignore) to ``target``."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=repo, capture_output=True, check=True,
    ).stdout.decode()  # fmt: skip
    for name in filter(None, listed.split("\0")):
        source = repo / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def run(command: list[str], cwd: Path, log: list[str], env: dict | None = None) -> None:
    """Run ``command``; on failure raise with its output (the last lines)."""
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    shown = " ".join(part if len(part) < 60 else part[:57].replace("\n", " ") + "..." for part in command[:7])
    log.append(f"{time.perf_counter() - start:6.1f} s  {shown}")
    if done.returncode != 0:
        output = (done.stdout + done.stderr)[-4000:]
        raise RuntimeError(f"{' '.join(command)} failed with code {done.returncode}:\n{output}")


def dry_run(workdir: Path, log: list[str]) -> None:
    """Resolve the requirements (with the local torch) without installing anything."""
    repo = copy_repository(workdir / "repo")
    requirements = workdir / "requirements-local.txt"
    requirements.write_text("\n".join([TORCH_SPEC, *local_requirements(repo / "binder")]) + "\n")
    run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
         "--disable-pip-version-check", "-r", str(requirements)],
        cwd=repo, log=log,
    )  # fmt: skip


def full_check(workdir: Path, log: list[str]) -> None:
    """Build a scratch venv from binder/ files only, import xtlab and execute the tour notebook in it."""
    repo = copy_repository(workdir / "repo")
    major, minor = runtime_python(repo / "binder")
    if sys.version_info[:2] != (major, minor):
        log.append(f"note: runtime.txt asks for Python {major}.{minor}, this check runs {sys.version.split()[0]}")
    venv = workdir / "venv"
    run([sys.executable, "-m", "venv", str(venv)], cwd=workdir, log=log)
    python = str(venv / "bin" / "python")
    pip = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    run([*pip, TORCH_SPEC], cwd=repo, log=log)
    requirements = workdir / "requirements-local.txt"
    requirements.write_text("\n".join(local_requirements(repo / "binder")) + "\n")
    run([*pip, "-r", str(requirements)], cwd=repo, log=log)  # from the repo root, as repo2docker does
    # The kernel must be the scratch venv's own: keep any user-level kernelspec out of sight.
    env = {**os.environ, "JUPYTER_DATA_DIR": str(workdir / "jupyter-data"), "JUPYTER_PATH": ""}
    run([python, "-c", "import xtlab, x_transformers, ipywidgets; print(xtlab.__version__)"], cwd=workdir, log=log)
    run([python, "-c", _EXECUTE_NOTEBOOK, str(repo / START_HERE), python], cwd=repo / "notebooks", log=log, env=env)


# Executes the notebook with nbclient and fails when a cell errors or the kernel is not the venv's python.
_EXECUTE_NOTEBOOK = """
import sys, nbformat
from nbclient import NotebookClient
path, expected_python = sys.argv[1], sys.argv[2]
nb = nbformat.read(path, as_version=4)
nb.cells.append(nbformat.v4.new_code_cell("import sys; print(sys.executable)"))
NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": "."}}).execute()
kernel_python = nb.cells[-1].outputs[0]["text"].strip()
assert kernel_python == expected_python, f"the kernel ran {kernel_python}, not the scratch venv's {expected_python}"
print("executed", path, "with", kernel_python)
"""


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="only resolve the requirements")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder (printed)")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="xtlab-binder-"))
    log: list[str] = []
    start = time.perf_counter()
    try:
        (dry_run if args.dry_run else full_check)(workdir, log)
    finally:
        print("\n".join(log))
        if args.keep:
            print(f"scratch folder kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"binder check ({'dry run' if args.dry_run else 'full'}) passed in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
