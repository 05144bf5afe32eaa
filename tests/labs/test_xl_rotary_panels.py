"""Lab 03 panels: drive each one through its controls and check what it re-draws."""

import pytest

from xtlab.labs.xl_rotary.memory_panels import (
    designs_panel,
    empty_memories_panel,
    plot_designs,
    plot_empty_memories,
    plot_memory_routing,
    routing_matrix,
    routing_panel,
)
from xtlab.labs.xl_rotary.position_panels import plot_position_schemes, positions_panel
from xtlab.widgets.figures import figure_to_png


def test_positions_panel_follows_the_sliders():
    panel = positions_panel()
    assert repr(panel).splitlines()[0] == "LabPanel(num_mems=4, seq_len=6)"
    first = panel.image.value
    panel.controls["num_mems"].value = 0
    assert all(panel.last_result.agrees.values()) and panel.image.value != first
    panel.controls["num_mems"].value = 2
    assert panel.last_result.positions["both from 0 (overlap)"][:3] == [0, 1, 0]
    assert "<table>" in panel.summary.value


def test_designs_panel_breaks_with_a_short_memory():
    panel = designs_panel()
    assert [p.equal for p in panel.last_result] == [True, True, False, False]
    first = panel.image.value
    panel.controls["max_mem_len"].value = 4
    assert not any(p.equal for p in panel.last_result) and panel.image.value != first
    panel.controls["unit_gains"].value = True
    assert "<table>" in panel.summary.value


def test_empty_memories_panel_redraws_with_more_slots():
    panel = empty_memories_panel()
    first, count = panel.image.value, panel.redraw_count
    panel.controls["num_mems"].value = 8
    assert panel.redraw_count == count + 1 and panel.image.value != first
    assert panel.last_result.weights["mask off"].shape == (8, 16)
    result = panel.last_result
    assert f"slot mask < 1e-12, no mask {result.max_abs_diff['mask off']:.2g}" in panel.summary.value


def test_routing_panel_moves_the_dropped_layer():
    panel = routing_panel()
    xtlab_routing, xt_routing = panel.last_result
    assert xt_routing.received == (None, 0, 1) and xtlab_routing.each_layer_gets_its_own
    first = panel.image.value
    panel.controls["dropped_layer"].value = 1
    _, xt_routing = panel.last_result
    assert xt_routing.dropped == (1,) and xt_routing.received == (0, None, 1)
    assert panel.image.value != first
    assert routing_matrix(xt_routing)[1, 3] == 1  # the dropped layer: "none" column


def test_routing_panel_offers_only_the_layers_of_the_chosen_depth():
    panel = routing_panel()
    dropped = panel.controls["dropped_layer"]
    assert list(dropped.options) == [0, 1, 2]
    panel.controls["depth"].value = 4
    dropped.value = 3
    count = panel.redraw_count
    panel.controls["depth"].value = 2  # layer 3 no longer exists: the dropdown falls back to 0, one re-draw
    assert list(dropped.options) == [0, 1] and dropped.value == 0
    assert panel.redraw_count == count + 1 and panel.last_error is None
    assert [r.dropped for r in panel.last_result] == [(0,), (0,)]


@pytest.mark.parametrize(("make_panel", "plot", "changes"), [
    (positions_panel, plot_position_schemes, [("num_mems", 0), ("seq_len", 12), ("num_mems", 10), ("seq_len", 1)]),
    (empty_memories_panel, plot_empty_memories, [("num_mems", 12), ("seq_len", 1), ("num_mems", 1)]),
    (designs_panel, plot_designs, [("num_segments", 6), ("max_mem_len", 4), ("num_segments", 1)]),
    (routing_panel, plot_memory_routing, [("dropped_layer", 2), ("depth", 4), ("depth", 2)]),
], ids=["positions", "empty_memories", "designs", "routing"])
def test_a_redraw_into_the_previous_figure_shows_what_a_new_figure_shows(make_panel, plot, changes):
    panel = make_panel()
    first = panel.last_figure
    for name, value in changes:
        panel.controls[name].value = value
        assert panel.image.value == figure_to_png(plot(panel.last_result))
    assert panel.last_figure is first or make_panel is routing_panel  # depth changes the routing figure's grid
