"""The panels' PNG redraw against ipympl's interactive canvas, on the same figures, kernel side, in one run.

A panel re-draws by rendering its figure to a PNG for an ``ipywidgets.Image`` (``figure_to_png``). ipympl, the
other way to put a live matplotlib figure in JupyterLab, re-draws by rendering the figure with Agg in the kernel
too and sending the changed pixels to the browser as a PNG (its canvas ``draw()``: Agg, then ``refresh_all``).
For every panel, each control is driven through its range (as ``widgets_speed`` does); after each change both
renderers draw that same figure state, in alternating order, at the panel's dpi (80). ipympl's message is
captured instead of sent, and it runs as it does once a browser is attached (``syncing_data_url`` off). What
the browser then does with the bytes is not measured (it decodes a PNG either way).

Usage: .venv/bin/python benchmarks/redraw_backends.py [--times 5]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from harness import machine_info, markdown_table, median, report
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from widgets_speed import control_values, discover_panel_factories

from xtlab.widgets.figures import figure_to_png

PANEL_DPI = 80  # figure_to_png's default: what a panel shows


@dataclass
class BackendTiming:
    """Seconds and bytes per redraw of one panel's figure, for each renderer."""

    panel: str
    png_s: list[float] = field(default_factory=list)
    ipympl_s: list[float] = field(default_factory=list)
    png_bytes: list[int] = field(default_factory=list)
    ipympl_bytes: list[int] = field(default_factory=list)


class IpymplRedraw:
    """An ipympl canvas on a figure, with its outgoing message captured: ``redraw()`` returns the bytes it would
    send. The figure keeps its own canvas between redraws (a panel's ``figure_to_png`` expects an Agg one)."""

    def __init__(self, fig: Figure) -> None:
        from ipympl.backend_nbagg import new_figure_manager_given_figure

        own = fig.canvas
        self.fig = fig
        self.canvas = new_figure_manager_given_figure(id(fig), fig).canvas
        self.canvas.syncing_data_url = False  # as after the browser's "initialized" message
        self.sent: list[int] = []
        self.canvas.send = lambda *args, buffers=(), **kwargs: self.sent.extend(len(b) for b in buffers)
        fig.set_canvas(own)

    def redraw(self) -> int:
        own, dpi = self.fig.canvas, self.fig.dpi
        self.fig.set_canvas(self.canvas)
        self.fig.dpi = PANEL_DPI
        self.sent.clear()
        try:
            self.canvas.draw()
        finally:
            self.fig.dpi = dpi
            self.fig.set_canvas(own)
        return sum(self.sent)


def png_redraw(fig: Figure) -> int:
    if type(fig.canvas) is not FigureCanvasAgg:
        FigureCanvasAgg(fig)
    return len(figure_to_png(fig, dpi=PANEL_DPI))


def time_panel(label: str, factory: Callable, times: int) -> BackendTiming:
    """Drive each control ``times`` times; after each change time both renderers on the panel's figure."""
    timing = BackendTiming(label)
    panel = factory()
    ipympl: dict[int, IpymplRedraw] = {}  # one canvas per figure (a panel builds a new figure when its shape changes)
    rounds = 0
    for control in panel.controls.values():
        original = control.value
        for value in control_values(control, times):
            control.value = value
            fig = panel.last_figure
            if id(fig) not in ipympl:
                ipympl[id(fig)] = IpymplRedraw(fig)
                ipympl[id(fig)].redraw()  # its first draw sends the whole figure: warm it up like the PNG path
            order = ("png", "ipympl") if rounds % 2 == 0 else ("ipympl", "png")
            rounds += 1
            for renderer in order:
                start = time.perf_counter()
                size = png_redraw(fig) if renderer == "png" else ipympl[id(fig)].redraw()
                elapsed = time.perf_counter() - start
                getattr(timing, f"{renderer}_s").append(elapsed)
                getattr(timing, f"{renderer}_bytes").append(size)
        if control.value != original:
            control.value = original
    return timing


def results_table(timings: list[BackendTiming]) -> str:
    rows = []
    for t in timings:
        if not t.png_s:
            rows.append([t.panel, 0, "-", "-", "-", "-", "-"])
            continue
        png, ipympl = median(t.png_s), median(t.ipympl_s)
        rows.append([t.panel, len(t.png_s), f"{png * 1000:.0f}", f"{ipympl * 1000:.0f}", f"{ipympl / png:.2f}",
                     f"{median(t.png_bytes) / 1024:.0f}", f"{median(t.ipympl_bytes) / 1024:.0f}"])
    headers = ["panel", "redraws", "PNG median ms", "ipympl median ms", "ipympl / PNG", "PNG KB", "ipympl KB sent"]
    return markdown_table(headers, rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--times", type=int, default=5, help="value changes per control")
    args = parser.parse_args(argv)
    try:
        import ipympl  # noqa: F401
    except ImportError:
        print("ipympl is not installed: `.venv/bin/pip install ipympl` (the `test` extra has it) to compare")
        return 1
    timings = []
    for label, factory in discover_panel_factories().items():
        timings.append(time_panel(label, factory, args.times))
        print(f"{label}: {len(timings[-1].png_s)} redraws", file=sys.stderr, flush=True)
    ratios = [median(t.ipympl_s) / median(t.png_s) for t in timings if t.png_s]
    notes = [
        "PNG = LabPanel's redraw (figure_to_png: Agg, then Pillow). ipympl = its canvas draw() with a browser "
        "attached: Agg, then the changed pixels as a PNG. Same figure state, same dpi, alternating order.",
        f"median of the per-panel ratios ipympl / PNG: {median(ratios):.2f} over {len(ratios)} panels.",
    ]
    print(report("Redraw: PNG image widget vs ipympl canvas (kernel side)", machine_info(), results_table(timings),
                 notes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
