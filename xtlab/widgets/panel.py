"""The thin widget every lab builds on: controls -> pure function -> figure + summary.

A panel reads its controls' values, calls ``compute`` (a pure function of those values),
hands the result to ``plot`` (returns a Figure) and ``summarize`` (returns HTML text), and
shows them in an ``Image`` and an ``HTML`` widget. Nothing is printed, so notebooks stay
comparable under nbval, and tests drive a panel by setting ``panel.controls[name].value``.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from typing import Any

import ipywidgets as widgets
from matplotlib.figure import Figure

from xtlab.widgets.figures import figure_to_png


class LabPanel(widgets.VBox):
    """A control panel that re-draws a figure and a summary whenever a control changes.

    Args:
        controls: name -> value widget (slider, dropdown, toggle...); names are the keyword
            arguments passed to ``compute``.
        compute: pure function ``compute(**values) -> result``.
        plot: ``plot(result) -> Figure``.
        summarize: ``summarize(result) -> str`` (HTML); optional.
        title: a heading shown above the controls.
        auto_refresh: re-draw on every control change (else only on ``refresh()``, e.g. from a button).
    """

    def __init__(
        self,
        controls: Mapping[str, widgets.ValueWidget],
        compute: Callable[..., Any],
        plot: Callable[[Any], Figure],
        summarize: Callable[[Any], str] | None = None,
        title: str = "",
        auto_refresh: bool = True,
        extra_children: tuple[widgets.Widget, ...] = (),
    ):
        if not controls:
            raise ValueError("a LabPanel needs at least one control, but got none")
        for name, control in controls.items():
            if not isinstance(control, widgets.ValueWidget):
                kind = type(control).__name__
                raise TypeError(f"control {name!r} must be an ipywidgets value widget, but got {kind}")
        self.controls = dict(controls)
        self._compute, self._plot, self._summarize = compute, plot, summarize
        self.image = widgets.Image(format="png", layout=widgets.Layout(max_width="100%"))
        self.summary = widgets.HTML()
        self.last_result: Any = None
        self.last_figure: Figure | None = None
        self.redraw_count = 0
        header = [widgets.HTML(f"<b>{html.escape(title)}</b>")] if title else []
        control_box = widgets.HBox(list(self.controls.values()), layout=widgets.Layout(flex_flow="row wrap"))
        super().__init__(children=[*header, control_box, *extra_children, self.image, self.summary])
        if auto_refresh:
            for control in self.controls.values():
                control.observe(self._on_change, names="value")
        self.refresh()

    def values(self) -> dict[str, Any]:
        """The current value of every control, by name."""
        return {name: control.value for name, control in self.controls.items()}

    def refresh(self) -> Any:
        """Compute, plot and summarize for the current values; return the result."""
        try:
            result = self._compute(**self.values())
        except (ValueError, TypeError) as err:  # a bad combination of controls: say so, keep the old plot
            self.summary.value = f"<span style='color:#b00'>{html.escape(str(err))}</span>"
            return None
        figure = self._plot(result)
        self.image.value = figure_to_png(figure)
        self.summary.value = self._summarize(result) if self._summarize else ""
        self.last_result, self.last_figure = result, figure
        self.redraw_count += 1
        return result

    def _on_change(self, change: dict) -> None:
        self.refresh()

    def __repr__(self) -> str:
        # Deterministic text: nbval compares a displayed widget's text/plain repr.
        args = ", ".join(f"{name}={value!r}" for name, value in self.values().items())
        return f"{type(self).__name__}({args})"
