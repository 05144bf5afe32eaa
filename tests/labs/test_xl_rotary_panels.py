"""Lab 03 panels: drive each one through its controls and check what it re-draws."""

from xtlab.labs.xl_rotary.memory_panels import empty_memories_panel, proof_panel, routing_matrix, routing_panel
from xtlab.labs.xl_rotary.position_panels import key_positions_panel, rotary_scores_panel


def test_key_positions_panel_follows_the_sliders():
    panel = key_positions_panel()
    assert repr(panel).splitlines()[0] == "LabPanel(num_mems=2, seq_len=4)"
    first = panel.image.value
    panel.controls["num_mems"].value = 5
    assert panel.last_result.continuous_list == [-5, -4, -3, -2, -1, 0, 1, 2, 3]
    assert panel.image.value != first
    assert "[-5, -4, -3, -2, -1, 0, 1, 2, 3]" in panel.summary.value


def test_rotary_scores_panel_counts_future_memories():
    panel = rotary_scores_panel()
    assert "6 of them placed in the future" in panel.summary.value
    first = panel.image.value
    panel.controls["num_mems"].value = 0
    continuous, restart = panel.last_result
    assert restart.memory_pairs_misplaced == 0 and panel.image.value != first


def test_proof_panel_breaks_with_a_short_memory_and_the_zero_start():
    panel = proof_panel()
    assert [p.equal for p in panel.last_result] == [True, False, False, True]
    first = panel.image.value
    panel.controls["start_from_zeros"].value = True
    assert [p.equal for p in panel.last_result] == [True, False, False, False]
    assert panel.image.value != first
    panel.controls["max_mem_len"].value = 4
    assert not panel.last_result[0].equal and panel.last_result[0].max_mem_len == 4
    assert "<table>" in panel.summary.value


def test_empty_memories_panel_redraws_with_more_slots():
    panel = empty_memories_panel()
    first, count = panel.image.value, panel.redraw_count
    panel.controls["num_mems"].value = 8
    assert panel.redraw_count == count + 1 and panel.image.value != first
    assert panel.last_result.weights["mask off"].shape == (8, 16)
    assert "mask on 0," in panel.summary.value


def test_routing_panel_moves_the_dropped_layer():
    panel = routing_panel()
    xtlab_routing, xt_routing = panel.last_result
    assert xt_routing.received_from == (1, 2, None)
    first = panel.image.value
    panel.controls["skipped_layer"].value = 2
    xtlab_routing, xt_routing = panel.last_result
    assert xt_routing.skipped_first == (2,) and xt_routing.received_from == (0, 1, None)
    assert xtlab_routing.each_layer_gets_its_own
    assert panel.image.value != first
    assert routing_matrix(xt_routing)[2, 3] == 1  # last layer: "none" column


def test_routing_panel_reports_an_impossible_choice_without_crashing():
    panel = routing_panel()
    panel.controls["depth"].value = 2
    panel.controls["skipped_layer"].value = 3
    assert "skipped_layer must be &lt; depth=2" in panel.status.value and "ValueError" in panel.last_error
