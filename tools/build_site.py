"""Build the course website into site/ from the stored notebooks, offline (make site).

Stages docs/ plus copies of notebooks/*.ipynb and solutions/*.ipynb in one folder that mirrors the repository's
paths (so each page's launch links open the same file), then runs sphinx-build. Nothing is executed and nothing
is downloaded.

Usage: python tools/build_site.py [--output site]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))
from teaching_guide import guide_markdown  # noqa: E402  (a sibling script, not a package)


def stage(target: Path) -> None:
    """docs/, the article pages and both editions' notebooks, laid out as in the repository, plus the generated
    teacher guide."""
    shutil.copytree(REPO / "docs", target, dirs_exist_ok=True)
    shutil.copytree(REPO / "xtlab" / "articles", target / "xtlab" / "articles")  # the pages the notebooks link
    (target / "teaching_by_lab.md").write_text(guide_markdown())
    for folder in ("notebooks", "solutions"):
        (target / folder).mkdir(exist_ok=True)
        for notebook in sorted((REPO / folder).glob("*.ipynb")):
            shutil.copy2(notebook, target / folder / notebook.name)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=REPO / "site")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        source = Path(scratch) / "src"
        stage(source)
        # myst-nb writes its execution folder beside the output folder: build in the scratch folder, so nothing
        # lands in the checkout (git status stays clean), then move the pages to --output
        built = Path(scratch) / "build" / "html"
        command = [sys.executable, "-m", "sphinx", "-b", "html", "-q", "-c", str(REPO / "docs"), str(source),
                   str(built)]
        result = subprocess.run(command)
        if result.returncode == 0:
            shutil.rmtree(args.output, ignore_errors=True)
            shutil.copytree(built, args.output)
    if result.returncode == 0:
        print(f"site built in {args.output} (open {args.output / 'index.html'})")
    return result.returncode


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
