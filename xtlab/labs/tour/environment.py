"""The environment check of the tour: versions in use, and whether widgets render where the notebook is open."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

import ipywidgets as widgets

PACKAGES = ("torch", "xtlab", "x-transformers", "ipywidgets", "matplotlib")

WIDGETS_LIVE = "Widgets render here: the panels in the labs are live, move their controls."
WIDGETS_STATIC = ("Widgets do not render here (a page without a kernel, or JupyterLab without the ipywidgets "
                  "extension). Every panel still shows its figure as a static image under its cell; to move the "
                  "controls, open the notebook in JupyterLab (`make lab`) or on Binder.")


def package_versions(packages: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    """Installed version of each package (``"not installed"`` when missing)."""
    found = {}
    for name in packages:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


class WidgetCheck(widgets.HTML):
    """A widget that says widgets work; where it cannot render, its text says what to do instead."""

    def __init__(self):
        super().__init__(f"<b style='color:#009E73'>✔ {WIDGETS_LIVE}</b>")

    def __repr__(self) -> str:
        return WIDGETS_STATIC


def widget_check() -> WidgetCheck:
    return WidgetCheck()
