"""Lab 03, item 5: memories under layer dropout, in xtlab and in the real x-transformers (observed by hooks)."""

import pytest

from xtlab.labs.xl_rotary.layer_dropout import memory_routing, predicted_skips, seed_skipping


@pytest.mark.parametrize("skipped", [0, 1, 2])
def test_xtlab_every_layer_keeps_its_own_memory(skipped):
    routing = memory_routing("xtlab", skipped_layer=skipped, depth=3)
    assert routing.skipped_first == (skipped,)  # the searched seed really skipped that layer
    assert routing.returned_counts == (3, 3, 3)
    assert routing.sources == (0, 1, 2)
    assert routing.received_from == (0, 1, 2) and routing.each_layer_gets_its_own


def test_x_transformers_dropped_layer_returns_no_memory_and_later_layers_shift():
    routing = memory_routing("x-transformers", skipped_layer=0, depth=3)
    assert routing.skipped_first == (0,)
    assert routing.returned_counts == (2, 2, 2)  # the list stays short in later segments
    assert routing.sources == (1, 2)
    assert routing.received_from == (1, 2, None)  # what the notebook prints
    assert not routing.each_layer_gets_its_own


def test_x_transformers_middle_layer_dropped():
    routing = memory_routing("x-transformers", skipped_layer=1, depth=3)
    assert routing.sources == (0, 2)
    assert routing.received_from == (0, 2, None)


@pytest.mark.parametrize("library", ["xtlab", "x-transformers"])
def test_seed_search_predicts_exactly_one_attention_skip(library):
    seed = seed_skipping(library, attn_layer=1, depth=3, layer_dropout=0.5)
    assert predicted_skips(library, seed, 6, 0.5) == [False, False, True, False, False, False]


def test_memory_routing_rejects_bad_input():
    with pytest.raises(ValueError, match="tensorflow"):
        memory_routing("tensorflow")
    with pytest.raises(ValueError, match="3"):
        memory_routing("xtlab", skipped_layer=3, depth=3)
    with pytest.raises(ValueError, match="1.5"):
        memory_routing("xtlab", layer_dropout=1.5)
