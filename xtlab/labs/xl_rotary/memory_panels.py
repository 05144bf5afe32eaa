"""Lab 03 plots and panels for memories: recording designs, empty memories, and layer dropout's routing."""

from __future__ import annotations

from functools import lru_cache

import ipywidgets as widgets
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from xtlab.labs.xl_rotary.layer_dropout import LIBRARIES, MemoryRouting, memory_routing
from xtlab.labs.xl_rotary.memory_masks import EmptyMemories, empty_memories
from xtlab.labs.xl_rotary.models import EXACT_TOLERANCE, shown_diff
from xtlab.labs.xl_rotary.recording import DESIGNS, SegmentedProof, all_designs
from xtlab.widgets.figures import CourseFigure, new_figure, reuse_figure
from xtlab.widgets.panel import LabPanel

LOG_FLOOR = 1e-18  # an exact 0 cannot sit on a log axis: draw it at the floor
DESIGN_STYLES = (("#0072B2", "o", "-"), ("#009E73", "s", "--"), ("#D55E00", "^", "-."), ("#CC79A7", "x", ":"))


def _build_designs(labels: tuple[str, ...]) -> CourseFigure:
    fig = new_figure(7.5, 5.0)
    ax = fig.add_subplot()
    for i, label in enumerate(labels):
        color, marker, line = DESIGN_STYLES[i % len(DESIGN_STYLES)]
        ax.plot([], [], color=color, marker=marker, linestyle=line, markersize=9 - 2 * (i % 2),
                label=f"{label} ({DESIGNS[label].who})")
    ax.axhline(EXACT_TOLERANCE, color="gray", linestyle=":", label="float64 tolerance 1e-12")
    ax.set(yscale="log", xlabel="segment", ylabel="max |segmented - full| (logits)", ylim=(LOG_FLOOR / 3, 30),
           title="Above the dotted line, a design breaks segmented = full")
    fig.legend(fontsize=7, loc="outside lower center", ncols=1)
    return fig


def plot_designs(proofs: list[SegmentedProof], figure: Figure | None = None) -> Figure:
    """Max |segmented - full| per segment on a log axis, one line per recording design.

    ``figure``: a figure this function drew before, to draw into (a panel's re-draw)."""
    fig = reuse_figure(figure, _build_designs, tuple(proof.label for proof in proofs))
    ax = fig.axes[0]
    for line, proof in zip(ax.lines, proofs, strict=False):  # the last line: the tolerance
        line.set_data(np.arange(1, proof.num_segments + 1), np.maximum(proof.max_abs_diff, LOG_FLOOR))
    ax.relim()
    ax.set_autoscalex_on(True)
    ax.autoscale_view()
    ax.set_xticks(np.arange(1, proofs[0].num_segments + 1))
    return fig


def summarize_designs(proofs: list[SegmentedProof]) -> str:
    rows = "".join(f"<tr><td>{p.label}</td><td>{DESIGNS[p.label].who}</td><td>{shown_diff(p.worst)}</td>"
                   f"<td>{p.equal}</td></tr>" for p in proofs)
    return f"<table><tr><th>design</th><th>who</th><th>worst</th><th>equal</th></tr>{rows}</table>"


def designs_panel() -> LabPanel:
    """Segment length, number of segments, memory length and unit gains; every design re-runs."""
    controls = {
        "segment_len": widgets.IntSlider(value=8, min=1, max=16, description="segment T"),
        "num_segments": widgets.IntSlider(value=4, min=1, max=6, description="segments"),
        "max_mem_len": widgets.IntSlider(value=64, min=1, max=96, description="max_mem_len"),
        "unit_gains": widgets.Checkbox(value=False, description="norm gains at 1 (untrained)"),
    }
    return LabPanel(controls, compute=all_designs, plot=plot_designs, summarize=summarize_designs,
                    title="Recording designs under the invariant")


EMPTY_TITLES = {"none": "mems=None", "mask on": "zero mems, slot mask", "mask off": "zero mems, no mask (bug)"}


def _build_empty_memories() -> CourseFigure:
    # fixed places (no layout pass per re-draw); tests/labs/test_xl_rotary_panels.py checks them at the extremes
    fig = new_figure(9, 3.2, margins={"left": 0.06, "right": 0.99, "bottom": 0.15, "top": 0.8, "wspace": 0.2})
    axes = fig.subplots(1, 3, sharey=True)  # one query axis: its labels on the left panel only
    for ax, title in zip(axes, EMPTY_TITLES.values(), strict=True):
        image = ax.imshow(np.zeros((1, 1)), vmin=0, vmax=1, cmap="viridis", aspect="auto")
        line = ax.axvline(-0.5, color="white", linewidth=1.5)
        ax.set(title=title, xlabel="key position (memory < 0)")
        fig.parts[title] = (image, line)
    axes[0].set_ylabel("query position")
    fig.colorbar(image, ax=axes, shrink=0.8, label="attention weight")
    fig.suptitle("Unmasked zero memories take weight from the real keys (left of the white line)", fontsize=10)
    return fig


def _whole_ticks(first: int, last: int, most: int = 6) -> list[int]:
    """At most ``most`` whole-number ticks from ``first`` to ``last``, 0 among them when in range."""
    step = max(1, -(-(last - first + 1) // most))
    return [k for k in range(first - first % step, last + 1, step) if k >= first]


def plot_empty_memories(result: EmptyMemories, figure: Figure | None = None) -> Figure:
    """Head-averaged attention weights of layer 0: no memories, zero memories masked, zero memories unmasked.

    ``figure``: a figure this function drew before, to draw into (a panel's re-draw)."""
    fig = reuse_figure(figure, _build_empty_memories)
    for key, title in EMPTY_TITLES.items():
        image, line = fig.parts[title]
        weights = result.weights[key]
        offset = 0 if key == "none" else result.num_mems
        extent = (-offset - 0.5, weights.shape[1] - offset - 0.5, weights.shape[0] - 0.5, -0.5)
        image.set_data(weights)
        image.set_extent(extent)
        image.axes.set(xlim=extent[:2], ylim=extent[2:])  # explicit: a reused axes' data limits hold old extents
        image.axes.set_xticks(_whole_ticks(-offset, weights.shape[1] - offset - 1))  # positions: whole numbers
        image.axes.set_yticks(_whole_ticks(0, weights.shape[0] - 1))
        line.set_visible(bool(offset))
    return fig


def summarize_empty_memories(result: EmptyMemories) -> str:
    d, w = result.max_abs_diff, result.memory_weight
    return (f"max |logits(zero mems) - logits(mems=None)|: slot mask {shown_diff(d['mask on'])}, "
            f"no mask {shown_diff(d['mask off'])}. "
            f"Weight on memory columns (mean per query): slot mask {w['mask on']:.2g}, no mask {w['mask off']:.2g}.")


def empty_memories_panel() -> LabPanel:
    """Sliders for the number of zero memory slots and the segment length."""
    controls = {
        "num_mems": widgets.IntSlider(value=4, min=1, max=12, description="zero slots M"),
        "seq_len": widgets.IntSlider(value=8, min=1, max=16, description="segment T"),
    }
    return LabPanel(controls, compute=empty_memories, plot=plot_empty_memories,
                    summarize=summarize_empty_memories, title="mems=None vs all-zero memories")


@lru_cache(maxsize=32)
def both_routings(dropped_layer: int = 0, depth: int = 3) -> tuple[MemoryRouting, ...]:
    """``memory_routing`` for xtlab and for x-transformers, each dropping ``dropped_layer`` in segment B.
    Cached: the runs are deterministic, and building x-transformers models is the slow part of a redraw."""
    return tuple(memory_routing(library, dropped_layer, depth) for library in LIBRARIES)


def routing_matrix(routing: MemoryRouting) -> np.ndarray:
    """(L, L + 1): 1 where attention layer k (row) received memory j (column; last column: none or did not run)."""
    n = routing.num_attn_layers
    matrix = np.zeros((n, n + 1))
    for k, got in enumerate(routing.received):
        matrix[k, n if got is None else got] = 1
    return matrix


def _build_memory_routing(layers: tuple[int, ...]) -> CourseFigure:
    fig = new_figure(8, 4.2)
    axes = np.atleast_1d(fig.subplots(1, len(layers)))
    for ax, n in zip(axes, layers, strict=True):
        image = ax.imshow(np.zeros((n, n + 1)), cmap="Blues", vmin=0, vmax=1.2)
        for k in range(n):
            ax.add_patch(Rectangle((k - 0.5, k - 0.5), 1, 1, fill=False, edgecolor="#D55E00", linestyle="--"))
        ax.set_xticks(range(n + 1), [*map(str, range(n)), "none"])
        ax.set(xlabel="memory passed in (index in the list)", ylabel="attention layer")
        fig.parts[ax] = image
    fig.suptitle("Off the dashed diagonal, a layer attends to another layer's memory", fontsize=10)
    return fig


def plot_memory_routing(routings: tuple[MemoryRouting, ...], figure: Figure | None = None) -> Figure:
    """Per library: which memory each attention layer received in the segment that dropped a layer.

    ``figure``: a figure this function drew before, to draw into (a panel's re-draw)."""
    fig = reuse_figure(figure, _build_memory_routing, tuple(r.num_attn_layers for r in routings))
    for (ax, image), routing in zip(fig.parts.items(), routings, strict=True):
        n = routing.num_attn_layers
        image.set_data(routing_matrix(routing))
        ax.set_yticks(range(n), [f"{k} (dropped)" if k in routing.dropped else str(k) for k in range(n)])
        ax.set_title(f"{routing.library} {routing.version}\n{routing.returned_count} of {n} memories returned")
    return fig


def summarize_routing(routings: tuple[MemoryRouting, ...]) -> str:
    parts = [f"{r.library} {r.version}: dropped {list(r.dropped)}; layer k received memory "
             f"{['none' if s is None else s for s in r.received]}; returned memories continue "
             f"{list(r.returned_old)} with the hidden states of layers {list(r.returned_new)}; each layer keeps its "
             f"own: {r.each_layer_gets_its_own}" for r in routings]
    return "<br>".join(parts)


def routing_panel() -> LabPanel:
    """Which attention layer the training segment drops, and the depth; both libraries re-run.

    The dropdown offers only the layers the chosen depth has."""
    depth = widgets.IntSlider(value=3, min=2, max=4, description="depth")
    dropped_layer = widgets.Dropdown(options=list(range(depth.value)), value=0, description="dropped layer")

    def follow_depth(change: dict) -> None:  # observes before the panel does: its re-draw sees valid options
        dropped_layer.options = list(range(change["new"]))  # keeps the value when it still exists, else 0

    depth.observe(follow_depth, names="value")
    return LabPanel({"dropped_layer": dropped_layer, "depth": depth}, compute=both_routings,
                    plot=plot_memory_routing, summarize=summarize_routing, title="Layer dropout meets XL memories")
