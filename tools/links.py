"""Launch links and badges, all built from one place: ``[project.urls] Repository`` in pyproject.toml.

A fork sets its repository there and runs ``make links``: the README's badges are rewritten between the
``<!-- links:start -->`` and ``<!-- links:end -->`` markers, and the next ``make notebooks`` / ``make site`` use
the same links (the notebooks' Colab setup cell, the site's launch buttons).

Usage: python tools/links.py          # rewrite the README's link block
"""

from __future__ import annotations

import re
import sys
from functools import cache
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib


REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
START, END = "<!-- links:start -->", "<!-- links:end -->"


@cache
def project() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def repository() -> tuple[str, str, str]:
    """(owner, name, branch) of the repository named in pyproject.toml."""
    url = project()["project"]["urls"]["Repository"].rstrip("/")
    match = re.fullmatch(r"https://github\.com/([\w.-]+)/([\w.-]+)", url)
    if match is None:
        raise ValueError(f"[project.urls] Repository must be https://github.com/OWNER/NAME, but got {url!r}")
    return match[1], match[2], project()["tool"]["xtlab"]["branch"]


def binder_url(path: str = "notebooks/00_start_here.ipynb") -> str:
    owner, name, branch = repository()
    return f"https://mybinder.org/v2/gh/{owner}/{name}/{branch}?urlpath=lab/tree/{path}"


def colab_url(path: str = "notebooks/00_start_here.ipynb") -> str:
    owner, name, branch = repository()
    return f"https://colab.research.google.com/github/{owner}/{name}/blob/{branch}/{path}"


def install_spec() -> str:
    """What Colab's setup cell installs: the course from the repository's branch."""
    owner, name, branch = repository()
    return f"xtlab @ git+https://github.com/{owner}/{name}@{branch}"


def colab_setup_code() -> str:
    """The first code cell of every notebook: installs the course inside Colab only, a no-op anywhere else."""
    return (
        "# In Google Colab only: install the course and switch on its widgets (elsewhere this cell does nothing).\n"
        "import sys\n"
        "\n"
        "if \"google.colab\" in sys.modules:\n"
        "    import subprocess\n"
        "\n"
        f"    course = \"{install_spec()}\"\n"
        "    subprocess.run([sys.executable, \"-m\", \"pip\", \"install\", \"-q\", course], check=True)\n"
        "    from google.colab import output\n"
        "\n"
        "    output.enable_custom_widget_manager()\n"
    )


def readme_block() -> str:
    """The README's badges and launch links."""
    return "\n".join([
        START,
        f"[![Binder](https://mybinder.org/badge_logo.svg)]({binder_url()})",
        f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({colab_url()})",
        f"(the tour in JupyterLab on Binder, or in Colab; [the whole `notebooks/` folder on Binder]"
        f"({binder_url('notebooks')}))",
        END,
    ])


def rewrite_readme(text: str) -> str:
    if START not in text or END not in text:
        raise ValueError(f"README.md must hold the markers {START} and {END}")
    before, rest = text.split(START, 1)
    return before + readme_block() + rest.split(END, 1)[1]


def main() -> int:
    README.write_text(rewrite_readme(README.read_text()))
    print(f"README links now point at {binder_url()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
