"""Print the nbgitpuller link that gives each student a copy of the course and opens a lab.

A student who follows the link logs in (first time), gets their server, and nbgitpuller clones the course
repository into ``<home>/xtlab`` (later visits pull the new commits and keep the student's own edits), then opens
the notebook in JupyterLab.

    python deploy/pull_link.py                                  # the local hub of `make hub`, this checkout
    python deploy/pull_link.py --hub https://hub.example.edu --repo https://github.com/<you>/xtlab
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from urllib.parse import urlencode

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]
TARGET = "xtlab"  # the folder each student's copy lands in


def course_branch() -> str:
    """The branch launch links open ([tool.xtlab] branch in pyproject.toml)."""
    return tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["xtlab"]["branch"]


def pull_link(hub: str, repo: str, branch: str, notebook: str, target: str = TARGET) -> str:
    """The link: ``hub`` (base URL), ``repo`` (a git URL, a file:// URL or a local path the servers can read),
    ``branch``, and ``notebook`` (path inside the repository) to open once pulled."""
    if not hub.startswith(("http://", "https://")):
        raise ValueError(f"hub must be an http(s) URL, but got {hub!r}")
    if not notebook or notebook.startswith("/"):
        raise ValueError(f"notebook must be a path inside the repository, but got {notebook!r}")
    query = urlencode(
        {"repo": repo, "branch": branch, "targetpath": target, "urlpath": f"lab/tree/{target}/{notebook}"}
    )
    return f"{hub.rstrip('/')}/hub/user-redirect/git-pull?{query}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    local_hub = f"http://127.0.0.1:{os.environ.get('XTLAB_HUB_PORT', '8000')}"  # as jupyterhub_config.py binds
    parser.add_argument("--hub", default=local_hub, help="the hub's base URL (default: the local one of make hub)")
    parser.add_argument("--repo", default=REPO.as_uri(), help="the course repository (default: this checkout)")
    parser.add_argument("--branch", default=None, help="default: [tool.xtlab] branch")
    parser.add_argument("--notebook", default="notebooks/01_layer_dropout.ipynb")
    args = parser.parse_args(argv)
    print(pull_link(args.hub, args.repo, args.branch or course_branch(), args.notebook))
    return 0


if __name__ == "__main__":
    sys.exit(main())
