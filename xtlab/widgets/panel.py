"""The thin widget every lab builds on: controls -> pure function -> figure + summary.

A panel reads its controls' values, calls ``compute`` (a pure function of those values), hands the result to
``plot`` (returns a Figure) and ``summarize`` (returns HTML text), and shows them in an ``Image`` and an ``HTML``
widget. A ``plot`` that takes a ``figure`` keyword gets the previous figure to draw into (see
``xtlab.widgets.figures.reuse_figure``), which re-draws faster than building a new one. Nothing is printed, so
notebooks stay comparable under nbval, and tests drive a panel by setting ``panel.controls[name].value``.

Outside a kernel (GitHub, nbviewer, an HTML export, the course site) a widget view shows nothing, so a panel's
output also carries its current figure as ``image/png`` and its summary as ``text/plain``.
"""

from __future__ import annotations

import base64
import html
import inspect
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

import ipywidgets as widgets
from matplotlib.figure import Figure

from xtlab.widgets.figures import figure_to_png

WORKING_TEXT = "computing…"


class LabPanel(widgets.VBox):
    """A control panel that re-draws a figure and a summary whenever a control changes.

    Args:
        controls: name -> value widget (slider, dropdown, toggle...); names are the keyword arguments passed to
            ``compute``. Sliders report on release (``continuous_update=False``): a drag is one re-draw, not one
            per pixel.
        compute: pure function ``compute(**values) -> result``.
        plot: ``plot(result) -> Figure``, or ``plot(result, figure=previous) -> Figure`` to re-draw into the
            previous figure (``None`` on the first draw and after an error).
        summarize: ``summarize(result) -> str`` (HTML); optional.
        title: a heading shown above the controls.
        auto_refresh: re-draw on every control change (else only on ``refresh()``, e.g. from a button).
        cache_size: how many results of ``compute`` to keep, keyed by the control values (0: none; use 0 when
            ``compute`` is not a pure function of them).
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
        cache_size: int = 32,
    ):
        if not controls:
            raise ValueError("a LabPanel needs at least one control, but got none")
        for name, control in controls.items():
            if not isinstance(control, widgets.ValueWidget):
                kind = type(control).__name__
                raise TypeError(f"control {name!r} must be an ipywidgets value widget, but got {kind}")
            if "continuous_update" in control.trait_names():
                control.continuous_update = False
        self.controls = dict(controls)
        self.title = title
        self._compute, self._plot, self._summarize = compute, plot, summarize
        self._plot_reuses = _takes_keyword(plot, "figure")
        self._reusable: Figure | None = None  # the figure the next re-draw may draw into
        self._drawn_values: dict[str, Any] | None = None
        self._cache: OrderedDict[tuple, Any] = OrderedDict()
        self._cache_size = cache_size
        self.image = widgets.Image(format="png", layout=widgets.Layout(max_width="100%"))
        self.summary = widgets.HTML()
        self.status = widgets.HTML()
        self.last_result: Any = None
        self.last_figure: Figure | None = None
        self.last_error: str | None = None
        self.last_seconds = 0.0
        self.redraw_count = 0
        header = [widgets.HTML(f"<b>{html.escape(title)}</b>")] if title else []
        control_box = widgets.HBox(list(self.controls.values()), layout=widgets.Layout(flex_flow="row wrap"))
        super().__init__(children=[*header, control_box, *extra_children, self.status, self.image, self.summary])
        if auto_refresh:
            for control in self.controls.values():
                control.observe(self._on_change, names="value")
        self.refresh()

    def values(self) -> dict[str, Any]:
        """The current value of every control, by name."""
        return {name: control.value for name, control in self.controls.items()}

    def refresh(self) -> Any:
        """Compute, plot and summarize for the current values; return the result (None when it failed).

        While it works the controls are disabled and a "computing…" line shows; any exception becomes a readable
        message in the panel (the previous figure stays), never only a trace in the kernel log.
        """
        start = time.perf_counter()
        self._set_working(True)
        try:
            values = self.values()
            result = self._cached_compute(values)
            figure = self._plot(result, figure=self._reusable) if self._plot_reuses else self._plot(result)
            self._reusable = figure
            png = figure_to_png(figure)
            summary = self._summarize(result) if self._summarize else ""
        except Exception as err:  # a bad combination of controls, or a lab bug: say so in the panel
            self._reusable = self._drawn_values = None  # a figure half-updated by a failed plot is not reused
            self.last_error = f"{type(err).__name__}: {err}"
            self.status.value = f"<span style='color:#b00'>Could not update: {html.escape(self.last_error)}</span>"
            return None
        finally:
            self._set_working(False)
            self.last_seconds = time.perf_counter() - start
        self.image.value, self.summary.value = png, summary
        self.status.value = ""
        self.last_result, self.last_figure, self.last_error = result, figure, None
        self._drawn_values = values
        self.redraw_count += 1
        return result

    def _cached_compute(self, values: dict[str, Any]) -> Any:
        key = tuple(values.items())
        try:
            hash(key)
        except TypeError:  # unhashable control values: compute every time
            return self._compute(**values)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        result = self._compute(**values)
        if self._cache_size > 0:
            self._cache[key] = result
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return result

    def _set_working(self, working: bool) -> None:
        for control in self.controls.values():
            control.disabled = working
        if working:
            self.status.value = f"<i>{WORKING_TEXT}</i>"
        elif self.status.value == f"<i>{WORKING_TEXT}</i>":
            self.status.value = ""

    def _on_change(self, change: dict) -> None:
        # A control that adjusts another one (e.g. the options of a dropdown) fires a nested change that already
        # re-drew these values: skip the repeat.
        if self.values() != self._drawn_values:
            self.refresh()

    def summary_text(self) -> str:
        """The summary as plain text (tags dropped, entities decoded)."""
        return html.unescape(re.sub(r"<[^>]+>", "", self.summary.value)).strip()

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bundle = super()._repr_mimebundle_(**kwargs)
        if self.image.value:  # the static view: the figure a kernel would show, for pages without widgets
            bundle["image/png"] = base64.b64encode(self.image.value).decode("ascii")
        return bundle

    def __repr__(self) -> str:
        # Deterministic text: nbval compares a displayed widget's text/plain repr.
        args = ", ".join(f"{name}={value!r}" for name, value in self.values().items())
        head = f"{type(self).__name__}({args})"
        summary = self.summary_text()
        return f"{head}\n{summary}" if summary else head


def _takes_keyword(function: Callable, name: str) -> bool:
    """Whether ``function`` accepts a keyword argument called ``name``."""
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):  # a builtin without a signature
        return False
    parameter = parameters.get(name)
    return parameter is not None and parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY)
