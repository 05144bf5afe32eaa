"""Lab 03 panels: drive each one through its controls and check what it re-draws."""

from xtlab.labs.xl_rotary.memory_panels import designs_panel, empty_memories_panel, routing_matrix, routing_panel
from xtlab.labs.xl_rotary.position_panels import positions_panel


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


def test_routing_panel_reports_an_impossible_choice_without_crashing():
    panel = routing_panel()
    panel.controls["depth"].value = 2
    panel.controls["dropped_layer"].value = 3
    assert "dropped_layer must be &lt; depth=2" in panel.status.value and "ValueError" in panel.last_error
