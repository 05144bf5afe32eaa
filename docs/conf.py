"""Sphinx configuration of the course website (built by tools/build_site.py; see `make site`).

The site is built from the stored notebooks (never executed here): the learner edition under ``notebooks/``, the
solutions under ``solutions/``, so a page's path is the notebook's path in the repository and the launch links
(Binder, Colab) open the same file. Nothing is downloaded at build time or when a page is viewed.
"""

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tools"))
from links import repository  # noqa: E402

owner, name, branch = repository()

project = "xtlab"
author = "The xtlab authors"
extensions = ["myst_nb", "sphinx.ext.autodoc", "sphinx.ext.napoleon"]
nb_execution_mode = "off"  # the notebooks are stored with their outputs; the site shows them as they are
nb_render_image_options = {"alt": "figure"}
# a widget view has no live kernel here: show the panel's stored figure (and the prediction's text) instead
nb_mime_priority_overrides = [("html", "application/vnd.jupyter.widget-view+json", None)]
myst_enable_extensions = ["colon_fence"]
exclude_patterns = ["_build", "**/src/**", "*.py", "teaching_by_lab.md"]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
suppress_warnings = ["mystnb.unknown_mime_type", "myst.header", "autodoc", "ref.python"]
html_theme = "sphinx_book_theme"
html_title = "xtlab — break transformer internals and watch"
html_theme_options = {
    "repository_url": f"https://github.com/{owner}/{name}",
    "repository_branch": branch,
    "path_to_docs": "",
    "use_repository_button": True,
    "launch_buttons": {"binderhub_url": "https://mybinder.org", "colab_url": "https://colab.research.google.com",
                       "notebook_interface": "jupyterlab"},
}
html_static_path = ["_static"]
html_css_files = ["xtlab.css"]  # long lines and prediction texts shown whole
html_context = {"default_mode": "light"}  # a set mode: the theme logs no "invalid theme mode" on a first visit
