"""The package as a user installs it: sdist and wheel build, the wheel installs in a fresh venv without
JupyterLab, imports, and runs one lab's experiment functions.

The fresh venv sees this environment's installs of the wheel's runtime dependencies (and of what they require,
nothing else) through a ``.pth`` file over a folder of links, so pip checks the wheel's requirements against
them instead of unpacking torch and matplotlib again (``tools/install_torch.sh`` is what a user's setup runs; it
is not what this test is about). JupyterLab, jupytext, nbval and pytest are not in that closure and must stay
absent."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

REPO = Path(__file__).resolve().parents[1]
SMOKE = """
import importlib.util, xtlab
from xtlab.labs import layer_dropout as lab
for name in ("jupyterlab", "jupytext", "nbval", "pytest"):
    assert importlib.util.find_spec(name) is None, f"{name} came with the core install"
run = lab.run_layer_dropout(layer_dropout=0.5, depth=2, steps=3, seed=0)
stats = lab.skip_statistics(run)
print("ok", xtlab.__version__, stats.block_steps, stats.losses_finite)
"""


def test_metadata_declares_license_extras_and_typing():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["license"] == "MIT" and project["license-files"] == ["LICENSE"]
    assert (REPO / "LICENSE").read_text().startswith("MIT License") and (REPO / "xtlab" / "py.typed").exists()
    assert not any(dep.startswith("jupyterlab") for dep in project["dependencies"])
    assert any(dep.startswith("jupyterlab") for dep in project["optional-dependencies"]["lab"])
    assert {"Repository", "Issues"} <= set(project["urls"]) and "Typing :: Typed" in project["classifiers"]


def _distribution_closure(names: list[str]) -> list[metadata.Distribution]:
    """The installed distributions of ``names`` and, recursively, those they require here (no extras)."""
    found, todo = {}, list(names)
    while todo:
        dist = metadata.distribution(todo.pop())
        key = dist.metadata["Name"].lower().replace("_", "-")
        if key in found:
            continue
        found[key] = dist
        for line in dist.requires or []:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name)
    return list(found.values())


def share_installed(names: list[str], venv_python: str, links: Path) -> None:
    """Make ``names`` and their dependencies, as installed here, importable in the venv of ``venv_python``."""
    links.mkdir()
    for dist in _distribution_closure(names):
        for top in {Path(str(file)).parts[0] for file in dist.files or []} - {".."}:
            source = Path(dist.locate_file(top))
            if source.exists() and not (links / top).exists():
                (links / top).symlink_to(source)
    site = subprocess.run([venv_python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    (Path(site) / "shared_from_test.pth").write_text(f"{links}\n")


@pytest.mark.slow
def test_wheel_installs_without_jupyterlab_and_runs_a_lab(tmp_path):
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--sdist", "--wheel", "--outdir", str(dist),
                    str(REPO)],
                   check=True, capture_output=True, timeout=600)
    wheel = next(dist.glob("xtlab-*.whl"))
    assert next(dist.glob("xtlab-*.tar.gz"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "xtlab/py.typed" in names and any(name.endswith("licenses/LICENSE") for name in names)
    assert "xtlab/labs/layer_dropout/experiments.py" in names
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    runtime = [Requirement(line).name for line in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
               ["dependencies"]]
    share_installed(runtime, python, tmp_path / "shared")
    subprocess.run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheel)], check=True,
                   capture_output=True, timeout=900)
    result = subprocess.run([python, "-c", SMOKE], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("ok 0.1.0 ") and result.stdout.split()[-1] == "True"
