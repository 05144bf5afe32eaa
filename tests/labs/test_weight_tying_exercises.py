"""Lab 02 exercise checkers beyond the shared exercise tests: other correct answers pass, more wrong ones are
refused, the hidden checkpoints are what they say, and checkers leave no trace."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from xtlab.course import PASS, TRY_AGAIN
from xtlab.labs.weight_tying.exercises import (
    CHECKPOINT_KINDS,
    EMBEDDING_KEY,
    EXERCISES,
    OUTPUT_KEY,
    _TiedLinearReference,
    naive_checkpoint,
)
from xtlab.model import TiedLinear as LibraryTiedLinear


class _MatmulWithTranspose(nn.Module):
    """Another correct answer: registers the bias with register_parameter, multiplies with @ and .T."""

    def __init__(self, embedding, scale=1.0, bias=False):
        super().__init__()
        self._embedding = [embedding]  # a list is not registered either
        self.scale = scale
        self.register_parameter("bias", nn.Parameter(torch.zeros(embedding.weight.shape[0])) if bias else None)

    def forward(self, x):
        logits = self.scale * (x @ self._embedding[0].weight.T)
        return logits if self.bias is None else logits + self.bias

    def extra_repr(self):
        return f"tied to {self._embedding[0]}"


class _LibraryWithBias(LibraryTiedLinear):
    """xtlab's TiedLinear plus the optional bias: the library's tie passes the checker."""

    def __init__(self, embedding, scale=1.0, bias=False):
        super().__init__(embedding, scale=scale)
        self.bias = nn.Parameter(torch.zeros(embedding.weight.shape[0])) if bias else None

    def forward(self, x):
        logits = super().forward(x)
        return logits if self.bias is None else logits + self.bias


def test_other_correct_tied_linears_pass():
    assert EXERCISES["TiedLinear"].check(_MatmulWithTranspose).status == PASS
    assert EXERCISES["TiedLinear"].check(_LibraryWithBias).status == PASS


def test_a_bias_added_before_the_scale_is_refused_on_the_scaled_case():
    class BiasInsideTheScale(_TiedLinearReference):
        def forward(self, x):
            logits = F.linear(x, self.tied[0].weight, self.bias)
            return logits * self.scale

    verdict = EXERCISES["TiedLinear"].check(BiasInsideTheScale)
    assert verdict.status == TRY_AGAIN and "scale 0.25, with a bias" in verdict.checked


def test_a_layer_that_returns_a_float32_copy_fails_the_float64_case():
    class Float32(_TiedLinearReference):
        def forward(self, x):
            return super().forward(x).float()

    verdict = EXERCISES["TiedLinear"].check(Float32)
    assert verdict.status == TRY_AGAIN and "float64" in verdict.checked


def test_the_hidden_checkpoints_are_what_they_say():
    for kind in CHECKPOINT_KINDS:
        state = naive_checkpoint(kind)
        assert EMBEDDING_KEY in state
    assert torch.equal(*(naive_checkpoint("equal pair")[key] for key in (EMBEDDING_KEY, OUTPUT_KEY)))
    assert not torch.equal(*(naive_checkpoint("diverged pair")[key] for key in (EMBEDDING_KEY, OUTPUT_KEY)))
    tiny = naive_checkpoint("one entry differs by 1e-6")
    assert torch.allclose(tiny[EMBEDDING_KEY], tiny[OUTPUT_KEY]) and not torch.equal(tiny[EMBEDDING_KEY],
                                                                                      tiny[OUTPUT_KEY])
    assert OUTPUT_KEY not in naive_checkpoint("no output key")
    assert naive_checkpoint("bfloat16 checkpoint")[EMBEDDING_KEY].dtype == torch.bfloat16
    with pytest.raises(ValueError, match="kind must be one of"):
        naive_checkpoint("other")


def test_a_loader_that_keeps_the_output_key_when_both_are_equal_passes():
    def keeps_the_output(model, state):
        if OUTPUT_KEY in state and not torch.equal(state[EMBEDDING_KEY], state[OUTPUT_KEY]):
            raise ValueError(f"{EMBEDDING_KEY} and {OUTPUT_KEY} differ")
        kept = OUTPUT_KEY if OUTPUT_KEY in state else EMBEDDING_KEY
        weights = {key: value for key, value in state.items() if key not in (EMBEDDING_KEY, OUTPUT_KEY)}
        model.load_state_dict({**weights, EMBEDDING_KEY: state[kept]})
        return kept

    assert EXERCISES["load_naive_checkpoint"].check(keeps_the_output).status == PASS


def test_a_loader_that_lies_about_the_key_it_kept_is_refused():
    reference = EXERCISES["load_naive_checkpoint"].reference

    def lies(model, state):
        reference(model, state)
        return "to_logits"

    verdict = EXERCISES["load_naive_checkpoint"].check(lies)
    assert verdict.status == TRY_AGAIN and "not the key it kept" in verdict.checked


def test_a_refusal_that_names_no_key_is_refused():
    def vague(model, state):
        if OUTPUT_KEY in state and not torch.equal(state[EMBEDDING_KEY], state[OUTPUT_KEY]):
            raise ValueError("bad checkpoint")
        return EXERCISES["load_naive_checkpoint"].reference(model, state)

    verdict = EXERCISES["load_naive_checkpoint"].check(vague)
    assert verdict.status == TRY_AGAIN and "name both keys" in verdict.checked


def test_checkers_leave_the_global_random_state_alone():
    before = torch.get_rng_state()
    for name, exercise in EXERCISES.items():
        assert exercise.check(exercise.reference).status == PASS, name
    assert torch.equal(torch.get_rng_state(), before)
