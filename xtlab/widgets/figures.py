"""Figure helpers shared by every lab's plot functions.

Plot functions build a ``matplotlib.figure.Figure`` directly (never through ``pyplot``), so no
global figure state leaks between calls and a figure is shown only where a notebook displays it.
"""

from __future__ import annotations

import io

from matplotlib.figure import Figure

# Okabe-Ito: distinguishable with every common colour-vision deficiency; every lab's figures cycle through it.
OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")


class CourseFigure(Figure):
    """A Figure whose axes share the course's look: the Okabe-Ito colour cycle, no top/right spines."""

    def add_subplot(self, *args, **kwargs):
        ax = super().add_subplot(*args, **kwargs)
        ax.set_prop_cycle(color=OKABE_ITO)
        ax.spines[["top", "right"]].set_visible(False)
        return ax

    def __repr__(self) -> str:
        return super().__repr__().replace(type(self).__name__, "Figure", 1)  # learners meet a plain Figure


def new_figure(width: float = 7.0, height: float = 3.5, **kwargs) -> Figure:
    """A fresh, unmanaged figure (no pyplot state) of ``width`` x ``height`` inches, in the course's style."""
    if width <= 0 or height <= 0:
        raise ValueError(f"figure size must be positive, but got width={width}, height={height}")
    return CourseFigure(figsize=(width, height), layout="constrained", **kwargs)


def figure_to_png(fig: Figure, dpi: int = 80) -> bytes:
    """Render ``fig`` to PNG bytes (what an ``ipywidgets.Image`` shows)."""
    if not isinstance(fig, Figure):
        raise TypeError(f"expected a matplotlib Figure, but got {type(fig).__name__}")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def show_figures_inline() -> bool:
    """Let a notebook show a returned Figure as an image.

    Plot functions never touch pyplot, so IPython's inline backend (which registers the Figure
    formatter) may never be switched on; this registers a PNG formatter for ``Figure`` directly.
    Returns whether an IPython shell was found.
    """
    try:
        from IPython import get_ipython
    except ImportError:  # plain Python: nothing to register
        return False
    shell = get_ipython()
    if shell is None:
        return False
    shell.display_formatter.formatters["image/png"].for_type(Figure, figure_to_png)
    return True
