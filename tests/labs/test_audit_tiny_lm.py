"""TinyLM, its planted bugs, the causality invariant and the lab's models."""

import pytest
import torch

from xtlab.diagnostics import audit
from xtlab.diagnostics.model_audit import FAILS, HOLDS
from xtlab.labs import audit as lab


def test_tiny_lm_is_a_causal_language_model_and_the_leak_is_planted():
    planted, fixed = lab.planted_pair(seed=0)
    assert torch.equal(planted.embed.weight, fixed.embed.weight) and planted.head.weight is planted.embed.weight
    tokens = torch.randint(0, lab.NUM_TOKENS, (2, 10), generator=torch.Generator().manual_seed(0))
    assert fixed(tokens).shape == (2, 10, lab.NUM_TOKENS)
    adapter = lab.tiny_lm_adapter(fixed)
    assert lab.causality_reference(fixed, adapter) is True
    assert lab.causality_reference(planted, lab.tiny_lm_adapter(planted)) is False
    assert lab.first_leaking_position(planted, adapter) == 0 and lab.first_leaking_position(fixed, adapter) is None


def test_block_drop_is_drawn_from_torch_and_only_in_training():
    model = lab.build_tiny_lm(0, block_drop=0.5, depth=4)
    skips = []
    for _ in range(2):
        torch.manual_seed(1)
        model(torch.zeros(1, 3, dtype=torch.long))
        skips.append(model.last_skipped)
    assert skips[0] == skips[1] and skips[0]
    model.eval()
    model(torch.zeros(1, 3, dtype=torch.long))
    assert model.last_skipped == ()


def test_the_tiny_lm_card_finds_the_leftover_head_and_the_naive_tie():
    model = lab.build_tiny_lm(0, value_head=True)
    card = audit(model, lab.tiny_lm_adapter(model), ddp=False)
    assert card.status("unused_parameters") == FAILS and "value_head.weight" in card.row("unused_parameters").evidence
    assert card.status("layer_dropout_seeding") == HOLDS
    assert card.status("tying_paths") == FAILS and "assign=True): half-tied" in card.row("tying_paths").evidence


def test_the_extra_row_separates_the_planted_bug_from_its_twin():
    statuses = []
    for model in lab.planted_pair(seed=0):
        card = audit(model, lab.tiny_lm_adapter(model), ddp=False, extra_checks={"causal": lab.causality_reference})
        statuses.append(card.status("causal"))
    assert statuses == [FAILS, HOLDS]


def test_the_x_transformers_recipe_rebuilds_the_same_architecture():
    model, recipe = lab.build_x_transformers(seed=0)
    again, _ = lab.build_x_transformers(seed=0)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values(),
                                                  strict=True))
    rebuilt = recipe()
    rebuilt.load_state_dict(model.state_dict())
    assert lab.parameter_count(rebuilt) == lab.parameter_count(model)
    plain, _ = lab.build_x_transformers(seed=0, memory_tokens=False, memory_kv=False)
    assert plain.num_memory_tokens == 0 and lab.parameter_count(plain) < lab.parameter_count(model)


def test_only_the_build_without_memory_features_keeps_segmented_equal_to_full():
    rows = lab.segmented_by_memory_features(seed=0)
    assert lab.holding_builds(rows) == ((False, False),)


@pytest.mark.parametrize(("kwargs", "error", "words"), [
    ({"dim": 30, "heads": 4}, ValueError, "divisible"),
    ({"block_drop": 1.5}, ValueError, "block_drop"),
    ({"leak": "yes"}, TypeError, "leak"),
    ({"num_tokens": 0}, ValueError, "num_tokens"),
])
def test_bad_tiny_lm_arguments_are_refused_by_name(kwargs, error, words):
    with pytest.raises(error, match=words):
        lab.TinyLM(**kwargs)


def test_bad_lab_arguments_are_refused_by_name():
    with pytest.raises(ValueError, match="max_len"):
        lab.build_tiny_lm(0)(torch.zeros(1, 40, dtype=torch.long))
    with pytest.raises(ValueError, match="seed"):
        lab.build_tiny_lm(-1)
    with pytest.raises(TypeError, match="TinyLM"):
        lab.tiny_lm_adapter(torch.nn.Linear(2, 2))
    with pytest.raises(TypeError, match="memory_tokens"):
        lab.build_x_transformers(0, memory_tokens="no")
    with pytest.raises(ValueError, match="seed"):
        lab.segmented_by_memory_features(seed=-2)
