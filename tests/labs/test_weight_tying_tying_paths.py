"""Every row of issue 6's table, measured live for naive assignment vs TiedLinear (and Lingua's registered variant).

A future torch or safetensors that changes one of these facts fails here, and the lab's prose must change with it.
"""

import pytest
import torch

from xtlab.labs.weight_tying.models import build_model, pair_verdict, tie_keys, tie_verdict
from xtlab.labs.weight_tying.paths import run_path

TIED_STYLES = ("naive", "tied_linear", "registered")


def test_as_built_every_tying_style_is_tied_and_none_is_untied():
    assert {style: run_path(style, "as_built").verdict for style in ("none", *TIED_STYLES)} == {
        "none": "untied", "naive": "tied", "tied_linear": "tied", "registered": "tied"}


def test_tied_linear_has_one_state_dict_key_and_one_parameter_less():
    naive, tied = run_path("naive", "as_built"), run_path("tied_linear", "as_built")
    assert naive.state_dict_keys == ("token_emb.weight", "to_logits.weight")
    assert tied.state_dict_keys == ("token_emb.weight",)
    assert naive.num_parameters == tied.num_parameters == run_path("none", "as_built").num_parameters - 1


@pytest.mark.parametrize("style", TIED_STYLES)
def test_torch_save_then_weights_only_load_stays_tied(style):
    outcome = run_path(style, "torch_save_load")
    assert outcome.verdict == "tied" and outcome.facts["values_restored"]


def test_conflicting_keys_load_silently_and_the_last_key_wins_for_naive():
    outcome = run_path("naive", "conflicting_keys")
    assert outcome.facts["loaded_silently"] and outcome.facts["winner"] == "to_logits.weight"
    assert outcome.verdict == "tied"


def test_conflicting_keys_also_possible_for_the_registered_variant():
    outcome = run_path("registered", "conflicting_keys")
    assert outcome.facts["conflict_possible"] and outcome.facts["winner"] == "to_logits.tied_module.weight"


def test_tied_linear_checkpoint_has_one_key_so_no_conflict_and_an_extra_key_is_refused():
    outcome = run_path("tied_linear", "conflicting_keys")
    assert outcome.facts == {"keys": ["token_emb.weight"], "conflict_possible": False, "extra_key_refused": True}


def test_assign_true_half_ties_naive_two_parameters_over_one_storage():
    outcome = run_path("naive", "assign")
    assert outcome.verdict == "half-tied"
    assert outcome.num_parameters == run_path("naive", "as_built").num_parameters + 1
    assert outcome.pointers[0] == outcome.pointers[1]


@pytest.mark.parametrize("style", ["tied_linear", "registered"])
def test_assign_true_keeps_tied_linear_tied(style):
    assert run_path(style, "assign").verdict == "tied"


@pytest.mark.parametrize("style", ["naive", "registered"])
def test_safetensors_save_file_refuses_shared_memory(style):
    outcome = run_path(style, "safetensors")
    assert outcome.verdict == "error"
    assert outcome.error.startswith("RuntimeError") and "share memory" in outcome.error


def test_safetensors_save_file_saves_tied_linear_with_one_tensor():
    outcome = run_path("tied_linear", "safetensors")
    assert outcome.verdict == "tied" and outcome.facts["tensors_saved_for_tie"] == 1


def test_meta_then_to_empty_unties_naive_and_keeps_tied_linear():
    assert run_path("naive", "meta_to_empty").verdict == "untied"
    assert run_path("tied_linear", "meta_to_empty").verdict == "tied"
    assert run_path("registered", "meta_to_empty").verdict == "tied"


def test_apply_with_new_parameters_unties_naive_and_keeps_tied_linear():
    assert run_path("naive", "apply_new_parameters").verdict == "untied"
    assert run_path("tied_linear", "apply_new_parameters").verdict == "tied"
    assert run_path("registered", "apply_new_parameters").verdict == "tied"


def test_in_place_init_naive_stays_tied_but_the_embedding_init_overwrites_the_linear_init():
    outcome = run_path("naive", "init_order")
    assert outcome.verdict == "tied"
    assert outcome.facts["init_order"] == ["Linear", "Embedding"]
    assert not outcome.facts["output_std_is_linear_init"]


def test_in_place_init_tied_linear_is_initialised_once():
    outcome = run_path("tied_linear", "init_order")
    assert outcome.verdict == "tied" and outcome.facts["inits_on_embedding_memory"] == 1


@pytest.mark.parametrize("path", ["deepcopy", "to_float64", "half"])
@pytest.mark.parametrize("style", TIED_STYLES)
def test_deepcopy_and_dtype_casts_keep_every_style_tied(style, path):
    assert run_path(style, path).verdict == "tied"


@pytest.mark.parametrize("style", TIED_STYLES)
def test_a_deepcopy_is_independent_of_the_original(style):
    assert run_path(style, "deepcopy").facts["independent_of_original"]


def test_registered_variant_puts_the_weight_in_the_state_dict_twice():
    assert tie_keys(build_model("registered")) == ["token_emb.weight", "to_logits.tied_module.weight"]


def test_pair_verdict_on_plain_tensors():
    weight = torch.nn.Parameter(torch.randn(3, 2))
    assert pair_verdict(weight, weight) == "tied"
    assert pair_verdict(weight, torch.nn.Parameter(weight.data)) == "half-tied"
    assert pair_verdict(weight, torch.nn.Parameter(weight.detach().clone())) == "untied"


def test_meta_tensors_share_no_memory():
    assert tie_verdict(build_model("none", device="meta")) == "untied"


@pytest.mark.parametrize(("style", "path", "bad"), [("tied", "as_built", "'tied'"), ("naive", "pickle", "'pickle'")])
def test_bad_style_or_path_is_named(style, path, bad):
    with pytest.raises(ValueError, match=bad):
        run_path(style, path)
