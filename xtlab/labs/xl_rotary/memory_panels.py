"""Lab 03 plots and panels, items 3-5: the equality proof, empty memories, and layer dropout's memories."""

from __future__ import annotations

from functools import lru_cache

import ipywidgets as widgets
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from xtlab.labs.xl_rotary.equality import (
    CONFIGS,
    EXACT_TOLERANCE,
    EmptyMemories,
    SegmentedProof,
    empty_memories,
    segmented_vs_full,
)
from xtlab.labs.xl_rotary.layer_dropout import LIBRARIES, MemoryRouting, memory_routing
from xtlab.widgets.figures import new_figure
from xtlab.widgets.panel import LabPanel

LOG_FLOOR = 1e-18  # an exact 0 cannot sit on a log axis: draw it at the floor


def all_proofs(segment_len: int = 8, num_segments: int = 4, max_mem_len: int = 64,
               start_from_zeros: bool = False) -> list[SegmentedProof]:
    """``segmented_vs_full`` for every configuration in ``CONFIGS`` (CPU, float64)."""
    return [segmented_vs_full(config, segment_len, num_segments, max_mem_len, start_from_zeros)
            for config in CONFIGS]


def plot_segmented_proof(proofs: list[SegmentedProof]) -> Figure:
    """Max |segmented - full| per segment on a log axis, one line per configuration."""
    fig = new_figure(7, 3.5)
    ax = fig.add_subplot()
    styles = [("o", "-"), ("s", "--"), ("^", "-."), ("x", ":")]  # overlapping lines stay distinguishable
    for i, proof in enumerate(proofs):
        segments = np.arange(1, proof.num_segments + 1)
        marker, line = styles[i % len(styles)]
        ax.plot(segments, np.maximum(proof.max_abs_diff, LOG_FLOOR), marker=marker, linestyle=line,
                markersize=9 - 2 * (i % len(styles)), label=proof.label)
    ax.axhline(EXACT_TOLERANCE, color="gray", linestyle=":", label="float64 rounding bound")
    ax.set(yscale="log", xlabel="segment", ylabel="max |segmented - full|", ylim=(LOG_FLOOR / 3, 10),
           title="Segment by segment with memories vs one full pass (float64)")
    ax.set_xticks(np.arange(1, proofs[0].num_segments + 1))
    ax.legend(fontsize=7, loc="center right")
    return fig


def summarize_proofs(proofs: list[SegmentedProof]) -> str:
    rows = "".join(f"<tr><td>{p.label}</td><td>{p.worst:.1e}</td><td>{p.equal}</td></tr>" for p in proofs)
    return f"<table><tr><th>configuration</th><th>worst</th><th>equal</th></tr>{rows}</table>"


def proof_panel() -> LabPanel:
    """Segment length, number of segments, memory length and the zero start; every configuration re-runs."""
    controls = {
        "segment_len": widgets.IntSlider(value=8, min=1, max=16, description="segment T"),
        "num_segments": widgets.IntSlider(value=4, min=1, max=6, description="segments"),
        "max_mem_len": widgets.IntSlider(value=64, min=1, max=96, description="max_mem_len"),
        "start_from_zeros": widgets.Checkbox(value=False, description="start from zero memories"),
    }
    return LabPanel(controls, compute=all_proofs, plot=plot_segmented_proof, summarize=summarize_proofs,
                    title="The exact-equality proof")


def plot_empty_memories(result: EmptyMemories) -> Figure:
    """Head-averaged attention weights of layer 0: no memories, zero memories masked, zero memories unmasked."""
    fig = new_figure(9, 3.2)
    axes = fig.subplots(1, 3)
    titles = {"none": "mems=None", "mask on": "zero mems, mask on", "mask off": "zero mems, mask off (bug)"}
    for ax, (key, title) in zip(axes, titles.items(), strict=True):
        weights = result.weights[key]
        offset = 0 if key == "none" else result.num_mems
        extent = (-offset - 0.5, weights.shape[1] - offset - 0.5, weights.shape[0] - 0.5, -0.5)
        image = ax.imshow(weights, vmin=0, vmax=1, cmap="viridis", extent=extent, aspect="auto")
        if offset:
            ax.axvline(-0.5, color="white", linewidth=1.5)
        ax.set(title=title, xlabel="key position (memory < 0)", ylabel="query")
    fig.colorbar(image, ax=axes, shrink=0.8, label="weight")
    return fig


def summarize_empty_memories(result: EmptyMemories) -> str:
    d, w = result.max_abs_diff, result.memory_weight
    return (f"max |logits(zero mems) - logits(mems=None)|: mask on {d['mask on']:.1e}, mask off {d['mask off']:.2g}. "
            f"Weight on memory columns (mean per query): mask on {w['mask on']:.2g}, "
            f"mask off {w['mask off']:.2g}.")


def empty_memories_panel() -> LabPanel:
    """Sliders for the number of zero memory slots and the segment length."""
    controls = {
        "num_mems": widgets.IntSlider(value=4, min=1, max=12, description="zero slots M"),
        "seq_len": widgets.IntSlider(value=8, min=1, max=16, description="segment T"),
    }
    return LabPanel(controls, compute=empty_memories, plot=plot_empty_memories,
                    summarize=summarize_empty_memories, title="mems=None vs all-zero memories")


@lru_cache(maxsize=32)
def both_routings(skipped_layer: int = 0, depth: int = 3) -> tuple[MemoryRouting, ...]:
    """``memory_routing`` for xtlab and for x-transformers, each skipping ``skipped_layer`` in segment 1.
    Cached: the runs are deterministic, and building x-transformers models is the slow part of a redraw."""
    return tuple(memory_routing(library, skipped_layer, depth) for library in LIBRARIES)


def routing_matrix(routing: MemoryRouting) -> np.ndarray:
    """(L, L + 1) ones where receiving layer k (row) got the memory recorded by layer s (column; last: none)."""
    n = routing.num_attn_layers
    matrix = np.zeros((n, n + 1))
    for k, source in enumerate(routing.received_from):
        matrix[k, n if source is None else source] = 1
    return matrix


def plot_memory_routing(routings: tuple[MemoryRouting, ...]) -> Figure:
    """Per library: which recorded memory each attention layer receives after a layer was dropped."""
    fig = new_figure(8, 4)
    axes = fig.subplots(1, len(routings))
    for ax, routing in zip(np.atleast_1d(axes), routings, strict=True):
        n = routing.num_attn_layers
        ax.imshow(routing_matrix(routing), cmap="Greens", vmin=0, vmax=1.2)
        for k in range(n):
            ax.add_patch(_diagonal_cell(k))
        ax.set_xticks(range(n + 1), [*map(str, range(n)), "none"])
        ax.set_yticks(range(n))
        skipped = ", ".join(map(str, routing.skipped_first)) or "none"
        ax.set(title=f"{routing.library}: {routing.returned_counts[0]} memories returned\n(layer {skipped} dropped)",
               xlabel="memory recorded by layer", ylabel="layer receiving it (next segment)")
    return fig


def _diagonal_cell(k: int) -> Rectangle:
    return Rectangle((k - 0.5, k - 0.5), 1, 1, fill=False, edgecolor="tab:red", linestyle="--", linewidth=1)


def summarize_routing(routings: tuple[MemoryRouting, ...]) -> str:
    parts = [f"{r.library}: memories returned per segment {list(r.returned_counts)}; layer k received the memory of "
             f"layer {['none' if s is None else s for s in r.received_from]}; each layer gets its own: "
             f"{r.each_layer_gets_its_own}" for r in routings]
    return "<br>".join(parts) + "<br>Dashed red: where each layer's own memory should be."


def routing_panel() -> LabPanel:
    """Which attention layer segment 1 drops, and the depth; both libraries re-run."""
    controls = {
        "skipped_layer": widgets.Dropdown(options=[0, 1, 2, 3], value=0, description="dropped layer"),
        "depth": widgets.IntSlider(value=3, min=2, max=4, description="depth"),
    }
    return LabPanel(controls, compute=both_routings, plot=plot_memory_routing, summarize=summarize_routing,
                    title="Layer dropout meets XL memories")
