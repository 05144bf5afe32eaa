"""Binder builds the labs from binder/ alone: check those files, and (slow) that they really build.

Fast checks always run. Resolving the requirements with pip takes 40-60 s (marked slow); building a
scratch venv, installing torch and running 00_start_here.ipynb in it takes ~3 minutes, so it runs
only with XTLAB_BINDER_FULL=1 (or by hand: ``python tools/binder_check.py``).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11, as binder/runtime.txt asks
REPO = Path(__file__).resolve().parents[1]
BINDER = REPO / "binder"


def _load_binder_check():
    spec = importlib.util.spec_from_file_location("binder_check", REPO / "tools" / "binder_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


binder_check = _load_binder_check()


def test_binder_files_exist():
    assert (BINDER / "requirements.txt").is_file()
    assert (BINDER / "runtime.txt").is_file()


def test_runtime_python_meets_the_projects_requires_python():
    major, minor = binder_check.runtime_python(BINDER)
    requires = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    assert Version(f"{major}.{minor}") in SpecifierSet(requires)


def test_runtime_python_rejects_a_malformed_runtime(tmp_path):
    (tmp_path / "runtime.txt").write_text("3.11\n")
    with pytest.raises(ValueError, match="'3.11'"):
        binder_check.runtime_python(tmp_path)


def test_requirements_install_the_project_itself():
    assert "-e ." in binder_check.requirement_lines(BINDER)


def test_torch_comes_from_the_cpu_wheel_index():
    index_lines = [line for line in binder_check.requirement_lines(BINDER) if line.startswith("--extra-index-url")]
    assert len(index_lines) == 1 and index_lines[0].rstrip("/").endswith("/whl/cpu"), index_lines


def test_local_requirements_drop_only_the_index_lines():
    lines, local = binder_check.requirement_lines(BINDER), binder_check.local_requirements(BINDER)
    assert [line for line in lines if line not in local] == [
        line for line in lines if line.startswith(binder_check.INDEX_OPTIONS)
    ]
    assert "-e ." in local


def test_every_binder_requirement_is_met_by_this_environment():
    # The dev environment passes the whole test suite, so Binder's pins must admit what it has.
    for line in binder_check.local_requirements(BINDER):
        if line.startswith("-"):
            continue
        requirement = Requirement(line)
        installed = Version(version(requirement.name)).base_version  # 2.13.0+cpu counts as 2.13.0
        assert requirement.specifier.contains(installed, prereleases=True), f"{line} but {installed} is installed"


def test_the_projects_own_dependencies_are_installed():
    # `-e .` pulls these; a missing one would fail on Binder before any notebook runs.
    for line in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]:
        requirement = Requirement(line)
        try:
            installed = Version(version(requirement.name)).base_version
        except PackageNotFoundError:
            pytest.fail(f"{requirement.name} is a dependency of xtlab but is not installed")
        assert requirement.specifier.contains(installed, prereleases=True), f"{line} but {installed} is installed"


@pytest.mark.slow
def test_binder_requirements_resolve(tmp_path):
    log: list[str] = []
    binder_check.dry_run(tmp_path, log)


@pytest.mark.slow
@pytest.mark.skipif(
    os.environ.get("XTLAB_BINDER_FULL") != "1",
    reason="builds a scratch venv from binder/ and runs 00_start_here.ipynb (~3 min): set XTLAB_BINDER_FULL=1",
)
def test_binder_environment_runs_the_start_notebook():
    scratch = Path(tempfile.mkdtemp(prefix="xtlab-binder-"))  # ~1.5 GB with torch: removed, not kept by pytest
    log: list[str] = []
    try:
        binder_check.full_check(scratch, log)
    finally:
        print("\n".join(log), file=sys.stderr)
        shutil.rmtree(scratch, ignore_errors=True)
