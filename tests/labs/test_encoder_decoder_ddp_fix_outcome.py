"""Lab 05 fix exercise, judged by outcome: (a) plain DDP trains, (b) the decoder's logits are unchanged, (c) a
checkpoint saved before the fix loads once exactly the dead key is dropped, (d) nothing else changes and a second
fix is a no-op. The catalogued wrong fixes that never reach the DDP run are checked here without processes."""

import io

import pytest
import torch

from xtlab.course import PASS, TRY_AGAIN
from xtlab.labs.encoder_decoder_ddp.checkpoint_exercise import CHECKPOINT_EXERCISE, load_reference
from xtlab.labs.encoder_decoder_ddp.experiments import build_seq2seq_model
from xtlab.labs.encoder_decoder_ddp.fix_exercise import (
    DEAD_KEYS,
    FIX_EXERCISE,
    _batches,
    buggy_trained_model,
    decoder_logits,
    fix_reference,
    fixed_trained_model,
)

CRITERIA = ("(a)", "(b)", "(c)", "(d)")


@pytest.mark.parametrize("mistake", FIX_EXERCISE.mistakes, ids=lambda m: m.description)
def test_every_wrong_fix_is_told_which_criterion_it_breaks_or_hides(mistake):
    verdict = FIX_EXERCISE.check(mistake.answer)  # none of them reaches the DDP run: no processes start
    assert verdict.status == TRY_AGAIN and mistake.says in str(verdict)
    assert any(criterion in str(verdict) for criterion in CRITERIA), str(verdict)


@pytest.mark.parametrize("flagged", [m for m in FIX_EXERCISE.mistakes if "find_unused_parameters" in m.description],
                         ids=lambda m: m.description)
def test_find_unused_parameters_as_the_fix_is_said_to_hide_the_weight_at_a_per_step_cost(flagged):
    text = str(FIX_EXERCISE.check(flagged.answer))
    assert "hides the unused weight" in text and "per-step cost" in text and "(a)" in text and "(c)" in text


class _DecoderThatNeverReturns(torch.nn.Module):
    def forward(self, *args, **kwargs):
        while True:
            pass


def _hangs_the_decoder(model):
    model.encoder.to_logits = None
    model.decoder = _DecoderThatNeverReturns()
    return model


def test_a_fixed_model_that_never_computes_gets_a_verdict_in_time():
    import dataclasses
    import time

    quick = dataclasses.replace(FIX_EXERCISE, time_limit_s=0.5, check_time_limit_s=3.0)
    start = time.perf_counter()
    verdict = quick.check(_hangs_the_decoder)
    assert verdict.status == TRY_AGAIN and "(b)" in str(verdict) and "did not finish" in str(verdict)
    assert time.perf_counter() - start < 6.0


def test_the_reference_is_idempotent_and_touches_nothing_else():
    buggy = buggy_trained_model()
    before = {name: p.detach().clone() for name, p in buggy.named_parameters() if name not in DEAD_KEYS}
    fixed = fix_reference(buggy)
    assert fix_reference(fixed) is fixed and fixed.encoder.to_logits is None
    after = dict(fixed.named_parameters())
    assert after.keys() == before.keys() and all(torch.equal(after[k], v) for k, v in before.items())
    clean = fixed_trained_model()
    clean_state = {k: v.clone() for k, v in clean.state_dict().items()}
    assert all(torch.equal(fix_reference(clean).state_dict()[k], v) for k, v in clean_state.items())


def test_the_hidden_batch_has_another_shape_and_a_padded_source():
    (shown_src, _, shown_mask), (src, tgt, mask) = _batches().values()
    assert shown_mask is None and src.shape != shown_src.shape and not bool(mask.all())
    buggy = buggy_trained_model()
    with torch.no_grad():
        expected = decoder_logits(buggy, src, tgt, mask)
        assert torch.equal(decoder_logits(fix_reference(buggy), src, tgt, mask), expected)


def test_a_checkpoint_saved_before_the_fix_loads_into_the_fixed_model_and_gives_the_same_logits():
    buggy = buggy_trained_model()
    saved = io.BytesIO()
    torch.save(buggy.state_dict(), saved)
    saved.seek(0)
    checkpoint = torch.load(saved)
    target = fix_reference(build_seq2seq_model(encoder_keeps_logits=True, seed=3))  # other weights, fixed
    assert load_reference(target, checkpoint) == list(DEAD_KEYS)
    assert set(checkpoint) - set(target.state_dict()) == set(DEAD_KEYS)  # the caller's dict keeps its key
    for src, tgt, mask in _batches().values():
        with torch.no_grad():
            assert torch.equal(decoder_logits(target, src, tgt, mask), decoder_logits(buggy, src, tgt, mask))


def test_the_checkpoint_refusal_names_the_key_and_loads_nothing():
    model = fixed_trained_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    stray = {**buggy_trained_model().state_dict(), "encoder.pooler.weight": torch.zeros(3)}
    with pytest.raises(ValueError, match="encoder.pooler.weight"):
        load_reference(model, stray)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in before.items())


def test_the_checkpoint_exercise_passes_its_reference_and_catches_each_mistake():
    assert CHECKPOINT_EXERCISE.check(load_reference).status == PASS
    for mistake in CHECKPOINT_EXERCISE.mistakes:
        verdict = CHECKPOINT_EXERCISE.check(mistake.answer)
        assert verdict.status == TRY_AGAIN and mistake.says in str(verdict), mistake.description


def _deletes_when_present(model):  # as idempotent as the reference: passes too
    if getattr(model.encoder, "to_logits", None) is not None:
        del model.encoder.to_logits
    return model


@pytest.mark.slow  # the DDP run starts 2 processes: seconds
def test_an_idempotent_delete_passes_all_four():
    verdict = FIX_EXERCISE.check(_deletes_when_present)
    assert verdict.status == PASS, str(verdict)
    assert all(criterion in str(verdict) for criterion in CRITERIA)
