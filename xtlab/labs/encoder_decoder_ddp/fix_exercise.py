"""Exercise 2: fix a trained encoder–decoder that carries the unused encoder ``to_logits``, so that real DDP
(2 processes, ``find_unused_parameters=False``) trains it; judged by a real run."""

from __future__ import annotations

import pickle
from collections.abc import Callable

import torch
from torch import nn

from xtlab.course import Exercise, Mistake, Verdict, call, describe
from xtlab.data.seq2seq import make_seq2seq_batch
from xtlab.labs.encoder_decoder_ddp.experiments import SEQ_LENGTH, build_seq2seq_model
from xtlab.labs.encoder_decoder_ddp.launch import run_scenarios
from xtlab.labs.encoder_decoder_ddp.scenarios import DDPScenario
from xtlab.threads import one_cpu_thread

BUGGY_SEED = 7  # "trained" weights: a model rebuilt from the default seed computes another loss


def buggy_trained_model() -> nn.Module:
    """The model the exercise hands over: encoder_keeps_logits=True, weights from seed 7, on the CPU whatever the
    default device (the DDP run that judges the fix is gloo on the CPU)."""
    with torch.device("cpu"):
        return build_seq2seq_model(encoder_keeps_logits=True, seed=BUGGY_SEED)


def _batch():
    with torch.device("cpu"):
        return make_seq2seq_batch("reverse", 4, SEQ_LENGTH, generator=torch.Generator().manual_seed(11))


def check_fix_encoder_decoder(fix_encoder_decoder: Callable[[nn.Module], nn.Module]) -> Verdict:
    """``fix_encoder_decoder(model)`` returns the model without its unused weight, computing the same loss; a real
    2-process DDP run with ``find_unused_parameters=False`` must then train it."""
    batch = _batch()
    with one_cpu_thread(), torch.no_grad():
        expected = float(buggy_trained_model()(batch.src, batch.tgt))
    fixed = call(fix_encoder_decoder, buggy_trained_model())
    if not isinstance(fixed, nn.Module):
        return Verdict.make_try_again(f"fix_encoder_decoder returned {describe(fixed)}", "return the fixed model")
    with one_cpu_thread():
        loss = call(fixed, batch.src, batch.tgt)
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        return Verdict.make_try_again(
            f"the fixed model returned {describe(loss)} for (src, tgt)", "keep forward as it is")
    loss = loss.detach()
    if not torch.isclose(loss.float(), torch.tensor(expected), rtol=1e-5, atol=1e-6):
        return Verdict.make_try_again(f"the fixed model computes a different loss on a test batch: {float(loss):.5f} "
                                 f"instead of {expected:.5f}",
                                 "change the model you are given (its weights are trained) rather than build a "
                                 "new one")
    left = getattr(getattr(fixed, "encoder", None), "to_logits", None)
    if isinstance(left, nn.Identity):
        return Verdict.make_try_again("encoder.to_logits is now an nn.Identity: DDP trains, but the model is no longer "
                                      "the one built without the bug (its modules differ, and a caller of to_logits "
                                      "gets the embeddings back as if they were logits)",
                                      "remove the module itself, as x-transformers 1.35.2 builds the encoder: "
                                      "without to_logits (None)")
    if isinstance(left, nn.Module) and not any(True for _ in left.parameters()):
        return Verdict.make_try_again(f"encoder.to_logits is still a {type(left).__name__}, emptied of its weight: "
                                      f"calling it raises, and the model is not the one built without the bug",
                                      "remove the module itself (del model.encoder.to_logits), not only its weight")
    frozen = [(name, p.numel()) for name, p in fixed.named_parameters() if not p.requires_grad]
    if frozen:  # DDP would train it, but the dead weight is still there
        return Verdict.make_try_again(f"the model still stores {[name for name, _ in frozen]} "
                                 f"({sum(n for _, n in frozen)} numbers, frozen): freezing an unused weight lets DDP "
                                 f"ignore it, but it stays in memory and in every checkpoint",
                                 "remove the module from the encoder, so no parameter of it is left")
    try:
        model_bytes = pickle.dumps(fixed)
    except Exception as err:
        return Verdict.make_try_again(f"the fixed model cannot be sent to the ranks ({type(err).__name__}: {err})",
                                 "change the given model in place; do not wrap it in a class defined in the notebook")
    report = run_scenarios(DDPScenario("your_fix", model_bytes=model_bytes, debug="DETAIL"))["your_fix"]
    if not report.ok:
        named = f"; parameters without gradient: {list(report.unused)}" if report.unused else ""
        return Verdict.make_try_again(
            "real DDP on 2 processes: " + " | ".join(rank.line() for rank in report.ranks) + named,
                                 "find the parameters without gradient: your finder, or the names in the error")
    return Verdict.make_pass(f"real DDP on 2 processes, find_unused_parameters=False: trained {report.scenario.steps} "
                          f"steps on every rank; ranks agree on parameters: {report.ranks_agree}")


def fix_reference(model: nn.Module) -> nn.Module:
    del model.encoder.to_logits
    return model


def _freezes(model):
    model.encoder.to_logits.weight.requires_grad_(False)
    return model


def _zeroes(model):
    with torch.no_grad():
        model.encoder.to_logits.weight.zero_()
    return model


def _rebuilds(model):
    return build_seq2seq_model()


def _deletes_the_weight_only(model):
    del model.encoder.to_logits.weight
    return model


def _swaps_in_identity(model):
    model.encoder.to_logits = nn.Identity()
    return model


FIX_EXERCISE = Exercise(
    name="fix_encoder_decoder",
    prompt="fix_encoder_decoder(model): take the trained encoder–decoder that keeps an unused encoder.to_logits, "
           "remove the dead weight without touching anything else, and return the model (a real 2-process DDP run "
           "with find_unused_parameters=False checks it)",
    checker=check_fix_encoder_decoder,
    reference=fix_reference,
    mistakes=(
        Mistake("freezes the unused weight", _freezes, "still stores"),
        Mistake("zeroes the unused weight", _zeroes, "Expected to have finished reduction"),
        Mistake("builds a fresh model instead", _rebuilds, "different loss"),
        Mistake("deletes the weight, keeps the module", _deletes_the_weight_only, "emptied of its weight"),
        Mistake("swaps the head for nn.Identity", _swaps_in_identity, "nn.Identity"),
    ),
    time_limit_s=20.0,
)
