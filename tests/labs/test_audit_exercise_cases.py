"""Lab 06's hidden cases do what the catalogue needs: the hidden model leaks at the first position only (a check
that changes only the last token misses it), and the loss is tried on a wrapper with none of the model's
attributes, as under DistributedDataParallel."""

import pytest
import torch

from xtlab.labs import audit as lab
from xtlab.labs.audit.adapter_exercise import CallOnly
from xtlab.labs.audit.invariant_exercise import HIDDEN, _last_token_only, first_position_leak


def test_the_hidden_model_leaks_at_the_first_position_only():
    model = first_position_leak(**HIDDEN)
    adapter = lab.tiny_lm_adapter(model)
    assert lab.first_leaking_position(model, adapter) == 0
    assert lab.causality_reference(model, adapter) is False
    assert _last_token_only(model, adapter) is True  # the mistake this case exists for
    planted, _ = lab.planted_pair(seed=0)
    assert _last_token_only(planted, lab.tiny_lm_adapter(planted)) is False  # the shown bug alone would not catch it


def test_the_call_only_wrapper_forwards_calls_and_hides_attributes():
    model = lab.build_tiny_lm(0)
    wrapped = CallOnly(model).eval()
    tokens = torch.zeros(1, 4, dtype=torch.long)
    assert torch.equal(wrapped(tokens), model.eval()(tokens))
    with pytest.raises(AttributeError):
        wrapped.num_tokens  # noqa: B018
