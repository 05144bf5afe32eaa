"""Every panel's figure follows the course's look: a title that says what to look at, labelled axes, colours from
the colour-blind-safe palette (Okabe-Ito, greys, or a colour-blind-safe colormap), and bars that start at zero
(or sit on a log axis that says so)."""

from __future__ import annotations

import pytest
from matplotlib.axes import Axes
from matplotlib.backend_bases import FigureCanvasBase
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import Collection
from matplotlib.colors import Colormap, ListedColormap, to_hex, to_rgba
from matplotlib.container import BarContainer
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

from xtlab.labs.panel_index import panel_factories
from xtlab.widgets.figures import OKABE_ITO, new_figure

PANELS = panel_factories()
PALETTE = {colour.lower() for colour in OKABE_ITO}
# perceptually ordered (viridis, cividis) or one hue from light to dark: told apart by lightness alone
SAFE_COLORMAPS = {"viridis", "cividis", "Greys", "gray", "binary", "Blues", "Oranges"}


def _is_grey(colour) -> bool:
    red, green, blue, _ = to_rgba(colour)
    return max(red, green, blue) - min(red, green, blue) < 0.03


def _colour_problems(ax: Axes) -> list[str]:
    colours: set[str] = set()
    colormaps: set[str] = set()
    for artist in ax.get_children():
        if not artist.get_visible():
            continue
        if isinstance(artist, Line2D):
            colours.add(to_hex(artist.get_color()))
        elif isinstance(artist, Rectangle) and artist is not ax.patch:
            if artist.get_fill():
                colours.add(to_hex(artist.get_facecolor()))
        elif isinstance(artist, (AxesImage, Collection)):
            colormap = artist.get_cmap() if isinstance(artist, AxesImage) or artist.get_array() is not None else None
            if isinstance(colormap, ListedColormap) and colormap.name not in SAFE_COLORMAPS:
                colours.update(to_hex(colour) for colour in colormap.colors)
            elif isinstance(colormap, Colormap):
                colormaps.add(colormap.name)
            elif isinstance(artist, Collection):
                colours.update(to_hex(colour) for colour in artist.get_facecolors() if to_rgba(colour)[3] > 0)
    problems = [f"colour {colour} is neither Okabe-Ito nor grey" for colour in sorted(colours)
                if colour.lower() not in PALETTE and not _is_grey(colour)]
    problems += [f"colormap {name} is not a colour-blind-safe one" for name in sorted(colormaps - SAFE_COLORMAPS)]
    return problems


def _shares_label(ax: Axes, axis: str) -> bool:
    """Another axes sharing this one's x (or y) carries the label: a stacked or side-by-side group."""
    group = ax.get_shared_x_axes() if axis == "x" else ax.get_shared_y_axes()
    label = Axes.get_xlabel if axis == "x" else Axes.get_ylabel
    return any(label(other) for other in group.get_siblings(ax) if other is not ax)


def _has_numeric_tick_labels(ax: Axes, axis: str) -> bool:
    """Tick labels that are numbers need an axis label to say what and in which unit; names label themselves."""
    labels = ax.get_xticklabels() if axis == "x" else ax.get_yticklabels()
    texts = [label.get_text().replace("\N{MINUS SIGN}", "-") for label in labels
             if label.get_visible() and label.get_text()]
    return bool(texts) and all(_is_number(text) for text in texts)


def _is_number(text: str) -> bool:
    try:
        float(text.replace("$", "").replace("{", "").replace("}", "").replace("\\mathdefault", "").replace("^", "e"))
    except ValueError:
        return False
    return True


def style_problems(fig: Figure) -> list[str]:
    """What the course's look asks for and ``fig`` lacks (an empty list: nothing)."""
    canvas = FigureCanvasAgg(fig) if type(fig.canvas) is FigureCanvasBase else fig.canvas
    canvas.draw()  # tick labels get their text at a draw
    problems = []
    data_axes = [ax for ax in fig.axes if ax.get_visible() and ax.axison and ax.get_label() != "<colorbar>"]
    suptitle = fig._suptitle.get_text() if fig._suptitle is not None else ""
    if data_axes and not suptitle and not any(ax.get_title() or ax.get_title("left") for ax in data_axes):
        problems.append("no title: neither a figure title nor an axes title says what to look at")
    for index, ax in enumerate(data_axes):
        where = f"axes {index} ({ax.get_title()[:40]!r})"
        for axis, label in (("x", ax.get_xlabel()), ("y", ax.get_ylabel())):
            if _has_numeric_tick_labels(ax, axis) and not label and not _shares_label(ax, axis):
                problems.append(f"{where}: the {axis} axis has numbers but no label")
        problems += [f"{where}: {problem}" for problem in _colour_problems(ax)]
        for container in ax.containers:
            if not isinstance(container, BarContainer):
                continue
            value_axis = "y" if container.orientation == "vertical" else "x"
            low = min(ax.get_ylim() if value_axis == "y" else ax.get_xlim())
            scale = ax.get_yscale() if value_axis == "y" else ax.get_xscale()
            label = ax.get_ylabel() if value_axis == "y" else ax.get_xlabel()
            if scale == "log" and "log" not in label:
                problems.append(f"{where}: bars on a log {value_axis} axis whose label does not say 'log'")
            elif scale != "log" and low > 0:
                problems.append(f"{where}: bars start at {low:g}, not at zero")
    return problems


@pytest.mark.parametrize("path", sorted(PANELS))
def test_every_panel_figure_has_the_course_look(path):
    panel = PANELS[path]()
    assert style_problems(panel.last_figure) == []


def test_style_problems_catch_each_fault():
    fig = new_figure()
    ax = fig.add_subplot()
    ax.plot([0, 1], [1, 2], color="#1f77b4")  # matplotlib's default blue, not the course palette
    ax.bar([0, 1], [5, 6])
    ax.set_ylim(4, 7)
    problems = style_problems(fig)
    assert any("no title" in problem for problem in problems)
    assert any("x axis has numbers but no label" in problem for problem in problems)
    assert any("#1f77b4" in problem for problem in problems)
    assert any("bars start at 4" in problem for problem in problems)


def test_a_figure_in_the_course_look_passes():
    fig = new_figure()
    ax = fig.add_subplot()
    ax.bar([0, 1], [5, 6], color=OKABE_ITO[0])
    ax.set(title="Two bars", xlabel="index", ylabel="count")
    assert style_problems(fig) == []
