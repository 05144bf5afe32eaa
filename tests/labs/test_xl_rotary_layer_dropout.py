"""Lab 03, layer dropout and memories, observed by hooks on xtlab and on the installed x-transformers."""

import pytest

from xtlab.labs.xl_rotary.layer_dropout import (
    LOOP_STEPS,
    loop_lines,
    memory_routing,
    predicted_skips,
    seed_skipping,
)


@pytest.mark.parametrize("dropped", [0, 1, 2])
def test_xtlab_every_layer_keeps_its_own_memory(dropped):
    routing = memory_routing("xtlab", dropped_layer=dropped, depth=3)
    assert routing.dropped == (dropped,)  # the searched seed really dropped that layer
    assert routing.received == tuple(None if k == dropped else k for k in range(3))
    assert routing.returned_count == 3 and routing.returned_old == routing.returned_new == (0, 1, 2)
    assert routing.each_layer_gets_its_own and routing.misrouted == ()


def test_x_transformers_next_layer_takes_the_dropped_layers_memory():
    routing = memory_routing("x-transformers", dropped_layer=0, depth=3)
    assert routing.dropped == (0,)
    assert routing.received == (None, 0, 1)  # by identity with the list passed in
    assert routing.returned_count == 2
    assert routing.returned_old == (0, 1) and routing.returned_new == (1, 2)  # shifted by one layer
    assert routing.misrouted == (1, 2) and not routing.each_layer_gets_its_own


@pytest.mark.parametrize(("dropped", "received", "new"), [(1, (0, None, 1), (0, 2)), (2, (0, 1, None), (0, 1))])
def test_x_transformers_later_drops(dropped, received, new):
    routing = memory_routing("x-transformers", dropped_layer=dropped, depth=3)
    assert routing.received == received and routing.returned_new == new and routing.returned_count == 2
    assert not routing.each_layer_gets_its_own  # even dropping the last layer loses its memory


def test_x_transformers_loop_skips_before_popping_and_recording():
    lines = loop_lines()
    assert set(lines) == set(LOOP_STEPS)
    skip = lines["layer dropout skips the layer"][0]
    assert skip < lines["the layer pops its memory"][0] and skip < lines["the layer records its hidden state"][0]
    assert lines["the layer records its hidden state"][1] == "hiddens.append(x)"


@pytest.mark.parametrize("library", ["xtlab", "x-transformers"])
def test_seed_search_predicts_exactly_one_attention_skip(library):
    seed = seed_skipping(library, attn_layer=1, depth=3, layer_dropout=0.5)
    assert predicted_skips(library, seed, 6, 0.5) == [False, False, True, False, False, False]


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="tensorflow"):
        memory_routing("tensorflow")
    with pytest.raises(ValueError, match="dropped_layer must be < depth=3"):
        memory_routing("xtlab", dropped_layer=3, depth=3)
    with pytest.raises(ValueError, match="1.5"):
        memory_routing("xtlab", layer_dropout=1.5)
