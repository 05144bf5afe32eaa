"""Widget responsiveness: time from a control's value change to the finished re-draw, for every lab panel.

Panel factories are discovered, not listed: every function in an ``xtlab.labs`` module whose name ends with
``_panel`` and that takes no required argument. Each control of each panel is driven ``N`` times through its
range (slider steps, dropdown options, toggles); the time around the ``.value =`` assignment is one sample,
since ``LabPanel`` re-draws synchronously (compute, plot, PNG). A sample counts only if ``redraw_count`` grew;
a panel without auto refresh gets an explicit ``refresh()`` inside the timed region.

Usage: .venv/bin/python benchmarks/widgets_speed.py [--times 10]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import ipywidgets as widgets
from harness import machine_info, markdown_table, median, percentile, report, verdict

import xtlab.widgets.panel as panel_module
from xtlab.labs.panel_index import panel_factories

TARGET_MEDIAN_S = 0.150
TARGET_P95_S = 0.300
GOAL_MEDIAN_S = 0.100
MIN_CHANGES_PER_PANEL = 20
STAGES = ("compute", "plot", "png")  # where a re-draw spends its time: the lab's function, matplotlib, rendering


@dataclass
class ControlTiming:
    """Samples for one control of one panel; ``failures`` counts changes that produced no re-draw."""

    panel: str
    control: str
    seconds: list[float] = field(default_factory=list)
    failures: int = 0
    stages: dict[str, list[float]] = field(default_factory=lambda: {stage: [] for stage in STAGES})


def discover_panel_factories() -> dict[str, Callable[[], Any]]:
    """``"module.function"`` -> factory for every lab panel (a lab module that fails to import is skipped with a
    warning: one lab being written must not stop the others' numbers)."""
    return panel_factories(skip_broken=True)


def control_values(control: widgets.ValueWidget, count: int) -> list[Any]:
    """``count`` values to set one after another, each different from the one before (so each fires a change)."""
    if count < 1:
        raise ValueError(f"count must be >= 1, but got {count}")
    current = control.value
    if isinstance(control, (widgets.IntSlider, widgets.FloatSlider, widgets.BoundedIntText,
                            widgets.BoundedFloatText, widgets.FloatLogSlider)):
        candidates = _range_values(control)
    elif isinstance(control, (widgets.IntRangeSlider, widgets.FloatRangeSlider)):
        low, high = control.min, control.max
        candidates = [(low, high), (low, (low + high) / 2 if isinstance(control, widgets.FloatRangeSlider)
                                     else (low + high) // 2)]
    elif isinstance(control, widgets.SelectMultiple):  # everything, then everything but one option in turn
        everything = tuple(value for _, value in _option_pairs(control.options))
        candidates = [everything] + [everything[:k] + everything[k + 1:] for k in range(len(everything))]
    elif hasattr(control, "options"):
        candidates = [value for _, value in _option_pairs(control.options)]
    elif isinstance(control.value, bool):
        candidates = [not current, current]
    else:
        raise TypeError(f"do not know how to drive a {type(control).__name__} (value {current!r})")
    candidates = [value for value in dict.fromkeys(candidates)]  # unique, in order
    if len(candidates) < 2:
        return []
    values, previous = [], current
    for value in itertools.cycle(candidates):
        if len(values) == count:
            break
        if value != previous:
            values.append(value)
            previous = value
    return values


def _range_values(control) -> list[Any]:
    """A spread of in-range values, on the slider's step grid."""
    low, high = control.min, control.max
    if isinstance(control, widgets.FloatLogSlider):
        return [control.base ** (low + (high - low) * k / 4) for k in range(5)]
    step = control.step or 1
    points = int(round((high - low) / step))
    picks = sorted({round(points * k / 4) for k in range(5)})
    kind = int if isinstance(control.value, int) else float
    return [kind(round(low + p * step, 10)) for p in picks]


def _option_pairs(options) -> list[tuple[str, Any]]:
    if isinstance(options, dict):
        return list(options.items())
    return [opt if isinstance(opt, tuple) and len(opt) == 2 else (str(opt), opt) for opt in options]


class StageClock:
    """Wraps a panel's compute and plot and the PNG renderer, so each re-draw's time splits into STAGES."""

    def __init__(self, panel):
        self.last: dict[str, float] = {}
        panel._compute = self.timed("compute", panel._compute)
        panel._plot = self.timed("plot", panel._plot)

    def timed(self, stage: str, function: Callable) -> Callable:
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.last[stage] = self.last.get(stage, 0.0) + time.perf_counter() - start
        return wrapper


@contextlib.contextmanager
def png_timed(clock_of: Callable[[], StageClock | None]):
    """Time ``figure_to_png`` as LabPanel calls it (looked up in its module at every re-draw)."""
    original = panel_module.figure_to_png

    def timed_png(*args, **kwargs):
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            clock = clock_of()
            if clock is not None:
                clock.last["png"] = clock.last.get("png", 0.0) + time.perf_counter() - start

    panel_module.figure_to_png = timed_png
    try:
        yield
    finally:
        panel_module.figure_to_png = original


def time_control(panel, name: str, control: widgets.ValueWidget, times: int, label: str,
                 clock: StageClock | None = None) -> ControlTiming:
    """Drive one control ``times`` times; restore its value afterwards (untimed).

    A panel that did not re-draw on the change (no auto refresh) gets ``refresh()`` inside the timed region.
    """
    timing = ControlTiming(label, name)
    original = control.value
    for value in control_values(control, times):
        before = panel.redraw_count
        if clock is not None:
            clock.last.clear()
        start = time.perf_counter()
        control.value = value
        if panel.redraw_count == before:
            panel.refresh()
        elapsed = time.perf_counter() - start
        if panel.redraw_count > before:
            timing.seconds.append(elapsed)
            if clock is not None:
                for stage in STAGES:
                    timing.stages[stage].append(clock.last.get(stage, 0.0))
        else:
            timing.failures += 1
    if control.value != original:
        control.value = original
    return timing


def run_panels(factories: dict[str, Callable[[], Any]], times: int) -> list[ControlTiming]:
    timings: list[ControlTiming] = []
    current: list[StageClock | None] = [None]
    with png_timed(lambda: current[0]):
        timings += _run_panels(factories, times, current)
    return timings


def _run_panels(factories, times: int, current: list) -> list[ControlTiming]:
    timings = []
    for label, factory in factories.items():
        start = time.perf_counter()
        try:
            panel = factory()
        except Exception as err:  # report it and carry on: one broken panel must not hide the others
            print(f"{label}: building the panel failed with {type(err).__name__}: {err}", file=sys.stderr)
            timings.append(ControlTiming(label, "(panel failed to build)", failures=1))
            continue
        build = time.perf_counter() - start
        if not hasattr(panel, "controls") or not hasattr(panel, "redraw_count"):
            print(f"{label}: returned a {type(panel).__name__}, not a LabPanel: skipped", file=sys.stderr)
            timings.append(ControlTiming(label, f"(not a LabPanel: {type(panel).__name__})", failures=1))
            continue
        print(f"{label}: built in {build:.2f} s, controls {list(panel.controls)}", file=sys.stderr, flush=True)
        clock = StageClock(panel)
        current[0] = clock
        for name, control in panel.controls.items():
            timings.append(time_control(panel, name, control, times, label, clock))
        current[0] = None
    return timings


def results_table(timings: list[ControlTiming]) -> str:
    """One row per panel: every change of every control together (each control driven to its extremes)."""
    panels: dict[str, list[ControlTiming]] = {}
    for timing in timings:
        panels.setdefault(timing.panel, []).append(timing)
    rows = []
    for panel, controls in panels.items():
        seconds = [s for timing in controls for s in timing.seconds]
        failures = sum(timing.failures for timing in controls)
        if not seconds:
            rows.append([panel, len(controls), 0, "-", "-", "-", "-", failures, "no samples"])
            continue
        mid, p95 = median(seconds), percentile(seconds, 95)
        ok = mid <= TARGET_MEDIAN_S and p95 <= TARGET_P95_S and not failures and len(seconds) >= MIN_CHANGES_PER_PANEL
        stages = " / ".join(
            f"{median([x for t in controls for x in t.stages[stage]]) * 1000:.0f}"
            if any(t.stages[stage] for t in controls) else "-" for stage in STAGES)
        rows.append([panel, len(controls), len(seconds), f"{mid * 1000:.0f}", f"{p95 * 1000:.0f}",
                     f"{max(seconds) * 1000:.0f}", stages, failures, "pass" if ok else "**fail**"])
    headers = ["panel", "controls", "changes", "median ms", "p95 ms", "max ms", "median ms compute / plot / png",
               "no re-draw", "target"]
    return markdown_table(headers, rows)


def panels_meet_target(timings: list[ControlTiming]) -> bool:
    panels: dict[str, list[float]] = {}
    for timing in timings:
        if timing.failures:
            return False
        panels.setdefault(timing.panel, []).extend(timing.seconds)
    return bool(panels) and all(
        len(seconds) >= MIN_CHANGES_PER_PANEL and median(seconds) <= TARGET_MEDIAN_S
        and percentile(seconds, 95) <= TARGET_P95_S for seconds in panels.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--times", type=int, default=20, help="value changes per control (each control's values "
                                                                   "include its extremes)")
    args = parser.parse_args(argv)
    factories = discover_panel_factories()
    timings = run_panels(factories, args.times)
    samples = [s for t in timings for s in t.seconds]
    met = panels_meet_target(timings)
    notes = [f"{len(factories)} panels found: {', '.join(factories) or 'none'}.",
             f"target per panel (>= {MIN_CHANGES_PER_PANEL} changes): median <= {TARGET_MEDIAN_S * 1000:.0f} ms and "
             f"p95 <= {TARGET_P95_S * 1000:.0f} ms from `.value =` to the finished re-draw (figure rendered to PNG; "
             f"goal median <= {GOAL_MEDIAN_S * 1000:.0f} ms): {verdict(met)}.",
             "a panel caches results by control values, so a value visited again skips its computation, as it "
             "does for a learner."]
    if samples:
        notes.append(f"all changes: median {median(samples) * 1000:.0f} ms, "
                     f"p95 {percentile(samples, 95) * 1000:.0f} ms.")
    print(report("Widget interaction: value change to re-draw", machine_info(), results_table(timings), notes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
