"""deploy/: the nbgitpuller link, and the hub configurations agreeing with it (the hub itself: make hub-test)."""

from __future__ import annotations

import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
sys.path.insert(0, str(DEPLOY))

from pull_link import course_branch, pull_link, tomllib  # noqa: E402 (tomllib, or tomli on Python 3.10)


def test_the_link_pulls_the_repository_into_xtlab_and_opens_the_lab():
    link = pull_link("https://hub.example.edu/", "file:///srv/xtlab", "main", "notebooks/01_layer_dropout.ipynb")
    parts = urlsplit(link)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "https://hub.example.edu/hub/user-redirect/git-pull"
    query = {key: values[0] for key, values in parse_qs(parts.query).items()}
    assert query == {
        "repo": "file:///srv/xtlab",
        "branch": "main",
        "targetpath": "xtlab",
        "urlpath": "lab/tree/xtlab/notebooks/01_layer_dropout.ipynb",
    }


@pytest.mark.parametrize(
    "hub, notebook",
    [("hub.example.edu", "notebooks/00_start_here.ipynb"), ("https://h", "/etc/passwd"), ("https://h", "")],
)
def test_the_link_refuses_a_hub_without_scheme_and_a_path_outside_the_repository(hub, notebook):
    with pytest.raises(ValueError):
        pull_link(hub, "file:///srv/xtlab", "main", notebook)


def test_z2jh_default_url_is_the_link_for_the_repository_and_branch_in_pyproject():
    yaml = pytest.importorskip("yaml")
    values = yaml.safe_load((DEPLOY / "z2jh-values.yaml").read_text())
    repository = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["urls"]["Repository"]
    link = pull_link("https://hub", repository, course_branch(), "notebooks/00_start_here.ipynb")
    assert values["singleuser"]["defaultUrl"] == link.split("/hub/user-redirect", 1)[1]
    assert values["singleuser"]["memory"]["guarantee"] and values["singleuser"]["cpu"]["limit"]


def test_the_local_hub_config_needs_no_root_and_takes_its_settings_from_the_environment(tmp_path, monkeypatch):
    pytest.importorskip("jupyterhub")
    from traitlets.config.loader import PyFileConfigLoader

    monkeypatch.setenv("XTLAB_HUB_SCRATCH", str(tmp_path))
    monkeypatch.setenv("XTLAB_HUB_PORT", "18765")
    monkeypatch.setenv("XTLAB_HUB_PASSWORD", "a-long-password")
    config = PyFileConfigLoader("jupyterhub_config.py", path=str(DEPLOY)).load_config()
    assert config.JupyterHub.bind_url == "http://127.0.0.1:18765"
    assert config.JupyterHub.spawner_class == "jupyterhub.spawner.SimpleLocalProcessSpawner"
    assert config.SimpleLocalProcessSpawner.home_dir_template == str(tmp_path / "home" / "{username}")
    assert config.SharedPasswordAuthenticator.user_password == "a-long-password"
    assert str(tmp_path) in config.JupyterHub.db_url
