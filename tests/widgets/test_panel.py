"""The shared panel: static view for pages without a kernel, release-only sliders, errors shown, results cached."""

import base64

import ipywidgets as widgets
import pytest

from xtlab.widgets import LabPanel
from xtlab.widgets.figures import new_figure


def plot_line(values):
    fig = new_figure(3, 2)
    fig.add_subplot().plot(values)
    return fig


def make_panel(compute=None, **kwargs):
    calls = []

    def default(n):
        calls.append(n)
        if n == 3:
            raise RuntimeError("three is not allowed")
        return list(range(n))

    controls = {"n": widgets.IntSlider(value=2, min=1, max=5)}
    panel = LabPanel(controls, compute=compute or default, plot=plot_line,
                     summarize=lambda values: f"<b>{len(values)}</b> values &amp; more", **kwargs)
    return panel, calls


def test_static_view_carries_the_figure_and_a_text_summary():
    panel, _ = make_panel()
    bundle = panel._repr_mimebundle_()
    assert base64.b64decode(bundle["image/png"]).startswith(b"\x89PNG")
    assert bundle["text/plain"] == "LabPanel(n=2)\n2 values & more"
    assert "application/vnd.jupyter.widget-view+json" in bundle


def test_sliders_report_on_release_only():
    panel, _ = make_panel()
    assert panel.controls["n"].continuous_update is False


def test_an_exception_in_compute_is_shown_in_the_panel_and_the_old_figure_stays():
    panel, _ = make_panel()
    before = panel.image.value
    panel.controls["n"].value = 3
    assert "three is not allowed" in panel.status.value and panel.last_error.startswith("RuntimeError")
    assert panel.image.value == before and not panel.controls["n"].disabled
    panel.controls["n"].value = 4
    assert panel.status.value == "" and panel.last_error is None and len(panel.last_result) == 4


def test_results_are_cached_by_control_values():
    panel, calls = make_panel()
    panel.controls["n"].value = 4
    panel.controls["n"].value = 2
    assert calls == [2, 4] and panel.redraw_count == 3
    uncached, uncached_calls = make_panel(cache_size=0)
    uncached.controls["n"].value = 4
    uncached.controls["n"].value = 2
    assert uncached_calls == [2, 4, 2]


def test_controls_are_disabled_while_computing():
    seen = []

    def compute(n):
        seen.append(panel_ref[0].controls["n"].disabled if panel_ref else None)
        return list(range(n))

    panel_ref = []
    controls = {"n": widgets.IntSlider(value=2, min=1, max=5)}
    panel = LabPanel(controls, compute=compute, plot=plot_line)
    panel_ref.append(panel)
    panel.controls["n"].value = 4
    assert seen[-1] is True and not panel.controls["n"].disabled


def test_bad_controls_are_refused():
    with pytest.raises(ValueError, match="at least one control"):
        LabPanel({}, compute=list, plot=plot_line)
    with pytest.raises(TypeError, match="'n'"):
        LabPanel({"n": widgets.Button()}, compute=list, plot=plot_line)


def test_a_plot_that_takes_figure_redraws_into_the_previous_one():
    received = []

    def plot_into(values, figure=None):
        received.append(figure)
        return figure if figure is not None else plot_line(values)

    def compute(n):
        if n == 3:
            raise RuntimeError("three is not allowed")
        return list(range(n))

    panel = LabPanel({"n": widgets.IntSlider(value=2, min=1, max=5)}, compute=compute, plot=plot_into)
    first = panel.last_figure
    panel.controls["n"].value = 4
    assert received == [None, first] and panel.last_figure is first
    panel.controls["n"].value = 3  # fails: the next re-draw starts from a new figure
    panel.controls["n"].value = 5
    assert received[-1] is None and panel.redraw_count == 3


def test_every_change_redraws_once_even_when_it_adjusts_another_control():
    depth = widgets.IntSlider(value=3, min=1, max=4)
    layer = widgets.Dropdown(options=[0, 1, 2], value=2)
    depth.observe(lambda change: setattr(layer, "options", list(range(change["new"]))), names="value")
    drawn = []
    panel = LabPanel({"layer": layer, "depth": depth}, compute=lambda layer, depth: [layer, depth],
                     plot=lambda values: drawn.append(tuple(values)) or plot_line(values))
    for value in (1, 4, 2, 3):
        count = panel.redraw_count
        depth.value = value
        assert panel.redraw_count == count + 1 and panel.last_error is None
    assert drawn == [(2, 3), (0, 1), (0, 4), (0, 2), (0, 3)]  # layer 2 vanished at depth 1: back to layer 0
