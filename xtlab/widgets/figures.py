"""Figure helpers shared by every lab's plot functions.

Plot functions build a ``matplotlib.figure.Figure`` directly (never through ``pyplot``), so no
global figure state leaks between calls and a figure is shown only where a notebook displays it.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Hashable

from matplotlib.backend_bases import FigureCanvasBase
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

# Okabe-Ito: distinguishable with every common colour-vision deficiency; every lab's figures cycle through it.
OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")


PNG_COMPRESS_LEVEL = 3  # zlib level: 6 (Pillow's default) takes ~50% longer for ~3% smaller panel PNGs


class CourseFigure(Figure):
    """A Figure whose axes share the course's look: the Okabe-Ito colour cycle, no top/right spines.

    ``reuse_key`` and ``parts`` serve :func:`reuse_figure`: what the figure was built for, and the artists a plot
    function updates when it draws new values into it.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.reuse_key: Hashable = None
        self.parts: dict = {}
        self.built_positions: list = []

    def add_subplot(self, *args, **kwargs):
        ax = super().add_subplot(*args, **kwargs)
        ax.set_prop_cycle(color=OKABE_ITO)
        ax.spines[["top", "right"]].set_visible(False)
        return ax

    def __repr__(self) -> str:
        return super().__repr__().replace(type(self).__name__, "Figure", 1)  # learners meet a plain Figure


def new_figure(width: float = 7.0, height: float = 3.5, margins: dict[str, float] | None = None,
               **kwargs) -> Figure:
    """A fresh, unmanaged figure (no pyplot state) of ``width`` x ``height`` inches, in the course's style.

    By default matplotlib's constrained layout places the axes at every draw. ``margins`` (``subplots_adjust``
    keywords: ``left``, ``right``, ``bottom``, ``top``, ``wspace``, ``hspace``, as figure fractions) fixes the
    places instead: a panel's figure that is re-drawn often skips the layout pass, which re-measures every tick
    label (about half of a re-draw). Check such a figure with :func:`layout_problems` at its controls' extremes.
    """
    if width <= 0 or height <= 0:
        raise ValueError(f"figure size must be positive, but got width={width}, height={height}")
    if margins is None:
        return CourseFigure(figsize=(width, height), layout="constrained", **kwargs)
    allowed = {"left", "right", "bottom", "top", "wspace", "hspace"}
    if not isinstance(margins, dict) or set(margins) - allowed:
        raise ValueError(f"margins must be a dict with keys among {sorted(allowed)}, but got {margins!r}")
    fig = CourseFigure(figsize=(width, height), **kwargs)
    fig.subplots_adjust(**margins)
    return fig


def layout_problems(fig: Figure, tolerance_px: float = 1.0) -> list[str]:
    """What a fixed layout got wrong, after drawing ``fig``: text or axes outside the figure, and axes whose
    decorations (tick labels, labels, titles) overlap another axes' (an empty list: nothing)."""
    if not isinstance(fig, Figure):
        raise TypeError(f"expected a matplotlib Figure, but got {type(fig).__name__}")
    canvas = FigureCanvasAgg(fig) if type(fig.canvas) is FigureCanvasBase else fig.canvas
    canvas.draw()
    renderer = canvas.get_renderer()
    width, height = canvas.get_width_height()
    problems = []
    boxes = []
    for index, ax in enumerate(fig.axes):
        box = ax.get_tightbbox(renderer)
        if box is None:
            continue
        name = ax.get_title() or ax.get_label() or f"axes {index}"
        if (box.x0 < -tolerance_px or box.y0 < -tolerance_px or box.x1 > width + tolerance_px
                or box.y1 > height + tolerance_px):
            problems.append(f"{name!r} reaches outside the figure: {box.bounds} in {width}x{height} px")
        boxes.append((name, box))
    for i, (name_a, a) in enumerate(boxes):
        for name_b, b in boxes[i + 1:]:
            overlap_x = min(a.x1, b.x1) - max(a.x0, b.x0)
            overlap_y = min(a.y1, b.y1) - max(a.y0, b.y0)
            if overlap_x > tolerance_px and overlap_y > tolerance_px:
                problems.append(f"{name_a!r} and {name_b!r} overlap by {overlap_x:.0f}x{overlap_y:.0f} px")
    for text in fig.texts:
        box = text.get_window_extent(renderer)
        if text.get_text() and (box.x0 < -tolerance_px or box.x1 > width + tolerance_px
                                or box.y1 > height + tolerance_px or box.y0 < -tolerance_px):
            problems.append(f"figure text {text.get_text()!r} reaches outside the figure")
    return problems


def reuse_figure(previous: Figure | None, build: Callable[..., CourseFigure], *structure: Hashable) -> CourseFigure:
    """``previous`` when ``build(*structure)`` made it, else a new figure from ``build(*structure)``.

    A plot function that can draw into an existing figure builds its axes and artists in ``build`` (a module-level
    function that stores the artists to update in ``fig.parts``), then sets every value-dependent property itself,
    on a new figure and on a reused one alike, so both render the same image. ``structure`` holds what fixes the
    figure's structure (number of axes, rows...). Re-drawing a figure skips building axes and ticks again.
    """
    if not callable(build):
        raise TypeError(f"build must be a function returning a figure, but got {type(build).__name__}")
    full_key = (build, structure)
    if isinstance(previous, CourseFigure) and previous.reuse_key == full_key:
        for ax, position in previous.built_positions:  # the layout engine starts where it started on the new figure
            ax._set_position(position)
        return previous
    fig = build(*structure)
    if not isinstance(fig, CourseFigure):
        raise TypeError(f"build must return a figure from new_figure, but got {type(fig).__name__}")
    fig.reuse_key = full_key
    fig.built_positions = [(ax, ax.get_position(original=True).frozen()) for ax in fig.axes]
    return fig


def figure_to_png(fig: Figure, dpi: int = 80) -> bytes:
    """Render ``fig`` to PNG bytes (what an ``ipywidgets.Image`` shows).

    A figure made without pyplot is drawn once on an Agg canvas (``savefig`` draws twice when a layout engine is
    set) and encoded by Pillow at a fast zlib level: the same pixels as ``savefig``, without the alpha channel
    when the figure is opaque. A figure shown by another backend goes through ``savefig``.
    """
    if not isinstance(fig, Figure):
        raise TypeError(f"expected a matplotlib Figure, but got {type(fig).__name__}")
    if type(fig.canvas) not in (FigureCanvasBase, FigureCanvasAgg):  # pyplot or GUI canvas: leave it alone
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=dpi)
        return buffer.getvalue()
    canvas = fig.canvas if type(fig.canvas) is FigureCanvasAgg else FigureCanvasAgg(fig)
    original_dpi = fig.dpi
    fig.dpi = dpi
    try:
        canvas.draw()
        image = Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba(), "raw", "RGBA", 0, 1)
    finally:
        fig.dpi = original_dpi
    if image.getextrema()[3] == (255, 255):  # opaque: RGB encodes faster and smaller
        image = image.convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="png", compress_level=PNG_COMPRESS_LEVEL)
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
