"""Figure helpers: PNG rendering matches savefig, and a reused figure renders like a new one."""

import io

import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

from xtlab.widgets.figures import CourseFigure, figure_to_png, new_figure, reuse_figure


def pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))


def build_line(kind: str) -> CourseFigure:
    fig = new_figure(4, 3)
    ax = fig.add_subplot()
    fig.parts["line"] = ax.plot([], [], marker="o")[0]
    ax.set(xlabel="step", ylabel=f"{kind} value")
    return fig


def plot_line(values, kind="loss", figure=None):
    fig = reuse_figure(figure, build_line, kind)
    fig.parts["line"].set_data(range(len(values)), values)
    ax = fig.axes[0]
    ax.relim()
    ax.autoscale_view()
    ax.set_title(f"{len(values)} values")
    return fig


def test_png_has_the_pixels_savefig_gives():
    fig = plot_line([1e-3, 5e4, 2.0])
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    png = figure_to_png(fig)
    assert Image.open(io.BytesIO(png)).mode == "RGB"  # opaque figure: no alpha channel
    assert np.array_equal(pixels(png), pixels(buffer.getvalue()))
    assert fig.dpi == 100  # rendering at 80 dpi leaves the figure as it was


def test_a_transparent_figure_keeps_its_alpha():
    fig = new_figure(2, 2, facecolor="none")
    fig.add_subplot().plot([0, 1])
    assert Image.open(io.BytesIO(figure_to_png(fig))).mode == "RGBA"


def build_images() -> CourseFigure:
    fig = new_figure(6, 2.5)
    axes = fig.subplots(1, 2)
    for ax in axes:
        fig.parts[ax] = ax.imshow(np.zeros((1, 1)), vmin=0, vmax=1, aspect="auto")
        ax.set(xlabel="key", ylabel="query")
    fig.colorbar(fig.parts[axes[0]], ax=axes, shrink=0.8, label="weight")
    return fig


def plot_images(size, figure=None):
    fig = reuse_figure(figure, build_images)
    for ax, image in fig.parts.items():
        image.set_data(np.eye(size))
        image.set_extent((-size - 0.5, size - 0.5, size - 0.5, -0.5))
        ax.set(xlim=(-size - 0.5, size - 0.5), ylim=(size - 0.5, -0.5))
    return fig


@pytest.mark.parametrize(("before", "after"), [(1, 12), (12, 1), (100, 2)])
def test_a_reused_figure_renders_like_a_new_one(before, after):
    """Other ticks after the first draw moved the layout: the re-draw must start where a new figure starts."""
    first = plot_images(before)
    figure_to_png(first)  # lays it out for `before`
    reused = plot_images(after, figure=first)
    assert reused is first
    assert figure_to_png(reused) == figure_to_png(plot_images(after))


def test_reuse_needs_the_same_build_and_structure():
    fig = plot_line([1, 2])
    assert plot_line([3], figure=fig) is fig
    assert plot_line([3], kind="accuracy", figure=fig) is not fig
    assert plot_line([3], figure=new_figure()) is not fig  # not built by build_line
    assert plot_line([3], figure=Figure()) is not fig


def test_reuse_refuses_bad_builders():
    with pytest.raises(TypeError, match="build must be a function"):
        reuse_figure(None, "build")
    with pytest.raises(TypeError, match="from new_figure, but got Figure"):
        reuse_figure(None, Figure)


def test_layout_problems_finds_a_label_outside_and_an_overlap():
    from xtlab.widgets.figures import layout_problems

    tight = new_figure(4, 3, margins={"left": 0.0, "right": 1.0, "bottom": 0.2, "top": 0.9, "wspace": 0.0})
    left, right = tight.subplots(1, 2)
    left.set_ylabel("a label with no room")
    right.set_ylabel("another one")
    problems = layout_problems(tight)
    assert any("outside the figure" in p for p in problems) and any("overlap" in p for p in problems)
    roomy = new_figure(6, 3, margins={"left": 0.15, "right": 0.95, "bottom": 0.2, "top": 0.9, "wspace": 0.5})
    a, b = roomy.subplots(1, 2)
    a.set_ylabel("room")
    b.set_ylabel("room")
    assert layout_problems(roomy) == []
    assert roomy.get_layout_engine() is None and new_figure().get_layout_engine() is not None


@pytest.mark.parametrize("margins", [{"left": 0.1, "middle": 0.5}, [0.1, 0.9]])
def test_new_figure_refuses_margins_it_does_not_know(margins):
    with pytest.raises(ValueError, match="margins must be a dict"):
        new_figure(margins=margins)
