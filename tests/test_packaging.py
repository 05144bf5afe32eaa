"""The package as a user installs it: sdist and wheel build, the wheel installs in a fresh venv without
JupyterLab, imports, and runs one lab's experiment functions (slow: it installs torch in that venv)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

REPO = Path(__file__).resolve().parents[1]
SMOKE = """
import importlib.util, xtlab
from xtlab.labs import layer_dropout as lab
for name in ("jupyterlab", "jupytext", "nbval"):
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
    subprocess.run([str(REPO / "tools" / "install_torch.sh"), python], check=True, capture_output=True, timeout=900)
    subprocess.run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheel)], check=True,
                   capture_output=True, timeout=900)
    result = subprocess.run([python, "-c", SMOKE], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("ok 0.1.0 ") and result.stdout.split()[-1] == "True"
