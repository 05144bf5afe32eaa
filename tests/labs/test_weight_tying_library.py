"""Lab 02: x-transformers' functional tie under deepcopy and torch.save; xtlab's safe checkpoints."""

import pytest

from xtlab.labs.weight_tying.checkpoints import safe_round_trip
from xtlab.labs.weight_tying.xtransformers import build_tied, copy_and_pickle


def test_x_transformers_deepcopy_reads_the_original_embedding_and_torch_save_fails():
    result = copy_and_pickle("x-transformers")
    assert result.to_logits_type == "function"
    assert result.copy_follows_original and not result.copy_follows_itself
    assert not result.pickles and "pickle" in result.pickle_error.lower()
    assert result.state_dict_round_trip


def test_xtlab_tied_linear_survives_deepcopy_and_pickles():
    result = copy_and_pickle("xtlab")
    assert result.to_logits_type == "TiedLinear"
    assert not result.copy_follows_original and result.copy_follows_itself
    assert result.pickles and result.pickle_error is None and result.state_dict_round_trip


def test_build_tied_rejects_an_unknown_library():
    with pytest.raises(ValueError, match="'flax'"):
        build_tied("flax")


@pytest.mark.parametrize("style", ["naive", "tied_linear", "registered"])
def test_safe_checkpoint_stores_the_tie_once_and_reloads_tied(style):
    trip = safe_round_trip(style)
    assert trip.tensors_in_file == safe_round_trip("tied_linear").state_dict_keys
    assert trip.verdict == "tied" and trip.values_restored


@pytest.mark.parametrize("style", ["naive", "registered"])
def test_safe_checkpoint_refuses_disagreeing_tied_keys(style):
    assert safe_round_trip(style).conflicting_refused is True


def test_safe_checkpoint_of_untied_model_keeps_both_weights():
    trip = safe_round_trip("none")
    assert trip.tensors_in_file == trip.state_dict_keys and trip.verdict == "untied"
