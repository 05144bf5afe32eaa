"""Every badge and launch link comes from [project.urls] Repository in pyproject.toml."""

import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("links", REPO / "tools" / "links.py")
links = importlib.util.module_from_spec(spec)
spec.loader.exec_module(links)


def test_readme_links_are_the_generated_block():
    assert links.readme_block() in (REPO / "README.md").read_text()
    owner, name, branch = links.repository()
    assert links.binder_url() == f"https://mybinder.org/v2/gh/{owner}/{name}/{branch}?urlpath=lab/tree/" \
                                 "notebooks/00_start_here.ipynb"
    assert links.colab_url("solutions/x.ipynb").endswith(f"/{owner}/{name}/blob/{branch}/solutions/x.ipynb")


def test_rewrite_replaces_only_the_block_and_needs_its_markers():
    text = f"intro\n{links.START}\nold\n{links.END}\noutro"
    assert links.rewrite_readme(text) == f"intro\n{links.readme_block()}\noutro"
    with pytest.raises(ValueError, match="markers"):
        links.rewrite_readme("no markers here")


def test_the_site_takes_its_launch_buttons_from_the_same_place():
    conf = (REPO / "docs" / "conf.py").read_text()
    assert "from links import repository" in conf and "github.com/xtlab" not in conf
