"""Exercise 3: fix a trained encoder–decoder that carries the unused encoder ``to_logits``, judged by outcome.

A fix must (a) let plain DDP (2 real processes, ``find_unused_parameters=False``) train the model, (b) keep the
decoder's logits equal to the unfixed model's (on the notebook's batch and on a hidden one of another shape, with a
padded source), (c) leave a model whose checkpoint is the pre-fix one less exactly ``DEAD_KEYS`` (so a checkpoint
saved before the fix loads once those are dropped: ``load_before_fix``), and (d) refuse nothing it should not: every
other parameter is untouched (values, ``requires_grad``), and the fix is idempotent: applied to a model that is
already fixed (its own output, or a model built without the bug) it changes nothing and does not raise.
A catalogued wrong fix is told which of the four it breaks, or merely hides."""

from __future__ import annotations

import copy
import pickle
from collections.abc import Callable

import torch
from torch import nn

from xtlab.course import Exercise, LearnerCodeFailed, Mistake, Verdict, call, describe
from xtlab.data.seq2seq import make_seq2seq_batch
from xtlab.labs.encoder_decoder_ddp.experiments import SEQ_LENGTH, build_seq2seq_model
from xtlab.labs.encoder_decoder_ddp.launch import run_scenarios
from xtlab.labs.encoder_decoder_ddp.scenarios import DDPScenario
from xtlab.threads import one_cpu_thread

BUGGY_SEED = 7  # "trained" weights: a model rebuilt from the default seed computes other logits
DEAD_KEYS = ("encoder.to_logits.weight",)  # what the fix removes, and what a pre-fix checkpoint holds in excess
FLAG_HINT = ("find_unused_parameters=True is not a fix: it breaks (a), since plain DDP still waits for the weight, and "
             "hides the unused weight at a per-step cost (a walk of the autograd graph after every forward) rather "
             "than removing it; (c) every checkpoint still carries it")


def buggy_trained_model() -> nn.Module:
    """The model the exercise hands over: encoder_keeps_logits=True, weights from seed 7, on the CPU whatever the
    default device (the DDP run that judges the fix is gloo on the CPU)."""
    with torch.device("cpu"):
        return build_seq2seq_model(encoder_keeps_logits=True, seed=BUGGY_SEED)


def fixed_trained_model() -> nn.Module:
    """The same weights built without the bug: what an already-fixed model looks like."""
    with torch.device("cpu"):
        return build_seq2seq_model(seed=BUGGY_SEED)


def _batches() -> dict[str, tuple]:
    """``name -> (src, tgt, src mask)``: the notebook's batch, and a hidden one of another shape (2 rows of 4
    digits, the sort task, the last source position of row 1 padded)."""
    with torch.device("cpu"):
        shown = make_seq2seq_batch("reverse", 4, SEQ_LENGTH, generator=torch.Generator().manual_seed(11))
        hidden = make_seq2seq_batch("sort", 2, 4, generator=torch.Generator().manual_seed(23))
    mask = torch.ones(2, 4, dtype=torch.bool, device="cpu")
    mask[1, -1] = False
    return {"the notebook's batch (4 x 6)": (shown.src, shown.tgt, None),
            "a hidden batch (2 x 4, sort, a padded source)": (hidden.src, hidden.tgt, mask)}


def decoder_logits(model: nn.Module, src: torch.Tensor, tgt: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """The decoder's teacher-forced logits (b, T-1, vocab), as the model's forward computes them before its loss."""
    return model.decoder(tgt[:, :-1], context=model.encode(src, mask), context_mask=mask)


def _learner_logits(model, src, tgt, mask):
    """The logits of the learner's model; its failure is (b)'s verdict."""
    try:
        with one_cpu_thread(), torch.no_grad():
            return call(decoder_logits, model, src, tgt, mask, copy_args=False)
    except LearnerCodeFailed as failure:
        raise LearnerCodeFailed(f"(b) the fixed model no longer computes the decoder's logits: {failure.checked}",
                                "keep the decoder and the encoder's forward as they are: remove only the encoder's "
                                "head") from None


def _asks_for_the_flag(fixed: nn.Module) -> str | None:
    """``model.find_unused_parameters = True``, or DDP keyword arguments kept on the model that ask for it."""
    for name, value in vars(fixed).items():
        if name == "find_unused_parameters" and value is True:
            return f"the attribute {name}=True"
        if isinstance(value, dict) and value.get("find_unused_parameters") is True:
            return f"the attribute {name}={{'find_unused_parameters': True, ...}}"
    return None


def _leftover(fixed: nn.Module) -> Verdict | None:
    """A verdict for what the fix left in place of the encoder's head (Identity, an emptied module, a flag)."""
    flag = _asks_for_the_flag(fixed)
    if flag is not None:
        return Verdict.make_try_again(f"the model you returned carries {flag}, a request for "
                                      f"find_unused_parameters=True", FLAG_HINT)
    left = getattr(getattr(fixed, "encoder", None), "to_logits", None)
    if isinstance(left, nn.Identity):
        return Verdict.make_try_again("encoder.to_logits is now an nn.Identity: (a), (b) and (c) pass, but (d) the "
                                      "model is no longer the one built without the bug (its modules differ, and a "
                                      "caller of to_logits gets the embeddings back as if they were logits)",
                                      "remove the module itself, as x-transformers 1.35.2 builds the encoder: "
                                      "to_logits is None")
    if isinstance(left, nn.Module) and not any(True for _ in left.parameters()):
        return Verdict.make_try_again(f"encoder.to_logits is still a {type(left).__name__}, emptied of its weight: "
                                      f"(a), (b) and (c) pass, but (d) calling it raises, and the model is not the "
                                      f"one built without the bug",
                                      "remove the module itself (encoder.to_logits = None, as the clean build "
                                      "holds it), not only its weight")
    return None


def _dead_weight_left(fixed: nn.Module) -> Verdict | None:
    """A verdict for a dead weight still stored: trainable (breaks (a)) or frozen (hides it from (a), breaks (c))."""
    params = dict(fixed.named_parameters())
    left = [name for name in DEAD_KEYS if name in params]
    if not left:
        return None
    weights = [params[name] for name in left]
    numbers = sum(w.numel() for w in weights)
    if all(not w.requires_grad for w in weights):
        return Verdict.make_try_again(f"the model still stores {left} ({numbers} numbers, frozen): (a) passes, since "
                                      f"DDP ignores a frozen weight, but that only hides it: (c) it stays in memory "
                                      f"and in every checkpoint", "remove the module from the encoder, so no "
                                      "parameter of it is left")
    zeroed = all(bool((w.detach() == 0).all()) for w in weights)
    what = "zeroed, but still a trainable parameter" if zeroed else "still a trainable parameter"
    return Verdict.make_try_again(f"{left} is {what} that the forward pass never uses: (a) breaks, since plain DDP "
                                  f"waits for its gradient and raises 'Expected to have finished reduction' at the "
                                  f"next step; (c) every checkpoint still carries it",
                                  "changing its values does not make it take part: remove the module" if zeroed else
                                  "remove the module from the encoder")


def _changed(fixed: nn.Module, expected: dict[str, torch.Tensor], trainable: dict[str, bool]) -> Verdict | None:
    """(d): every parameter other than the dead one is still there, bit-identical, with its requires_grad."""
    params = dict(fixed.named_parameters())
    missing = sorted(set(expected) - set(params))
    if missing:
        return Verdict.make_try_again(f"(d) the fix removed {missing}, which the model uses", "remove only "
                                      f"{list(DEAD_KEYS)}: leave every other parameter where it is")
    changed = sorted(name for name in expected if not torch.equal(params[name].detach(), expected[name]))
    if changed:
        return Verdict.make_try_again(f"(d) the fix changed the values of {changed[:3]}"
                                      f"{f' and {len(changed) - 3} more' if len(changed) > 3 else ''}",
                                      "change the model you are given (its weights are trained); do not touch any "
                                      "other weight")
    flipped = sorted(name for name in expected if params[name].requires_grad != trainable[name])
    if flipped:
        return Verdict.make_try_again(f"(d) the fix changed requires_grad of {flipped[:3]}", "leave every other "
                                      "parameter as it was")
    return None


def _checkpoint_keys(fixed: nn.Module, buggy_keys: list[str]) -> Verdict | None:
    """(c): the fixed model's checkpoint is the pre-fix one less exactly DEAD_KEYS."""
    keys = set(fixed.state_dict())
    expected = set(buggy_keys) - set(DEAD_KEYS)
    if keys != expected:
        extra, missing = sorted(keys - expected), sorted(expected - keys)
        return Verdict.make_try_again(f"(c) the fixed model's checkpoint differs from the pre-fix one by more than "
                                      f"{list(DEAD_KEYS)}: extra {extra}, missing {missing}",
                                      "a checkpoint saved before the fix must load once the dead key is dropped: "
                                      "add and remove nothing else")
    return None


def _not_idempotent(fix: Callable, fixed: nn.Module) -> Verdict | None:
    """(d): the fix applied to an already-fixed model (its own output; a clean build) changes nothing."""
    src, tgt, mask = next(iter(_batches().values()))
    for what, model in (("the model your fix returned", copy.deepcopy(fixed)),
                        ("a model built without the bug", fixed_trained_model())):
        before = {name: p.detach().clone() for name, p in model.named_parameters()}
        expected_logits = _learner_logits(model, src, tgt, mask)
        again = call(fix, model, copy_args=False)
        if not isinstance(again, nn.Module):
            return Verdict.make_try_again(f"(d) applied to {what}, fix_encoder_decoder returned {describe(again)}",
                                          "a model that is already fixed must come back as it is")
        now = {name: p.detach() for name, p in again.named_parameters()}
        if now.keys() != before.keys() or not all(torch.equal(now[k], before[k]) for k in before):
            return Verdict.make_try_again(f"(d) applied to {what}, the fix changed its parameters",
                                          "a model that is already fixed must come back as it is")
        if not torch.equal(_learner_logits(again, src, tgt, mask), expected_logits):
            return Verdict.make_try_again(f"(d) applied to {what}, the fix changed its decoder logits",
                                          "a model that is already fixed must come back as it is")
    return None


def check_fix_encoder_decoder(fix_encoder_decoder: Callable[[nn.Module], nn.Module]) -> Verdict:
    """``fix_encoder_decoder(model)`` returns the model without its unused weight; judged by (a)-(d) above."""
    buggy = buggy_trained_model()
    buggy_keys = list(buggy.state_dict())
    expected = {name: p.detach().clone() for name, p in buggy.named_parameters() if name not in DEAD_KEYS}
    trainable = {name: p.requires_grad for name, p in buggy.named_parameters()}
    batches = _batches()
    with one_cpu_thread(), torch.no_grad():
        expected_logits = {name: decoder_logits(buggy, *batch) for name, batch in batches.items()}
    fixed = call(fix_encoder_decoder, buggy)
    if not isinstance(fixed, nn.Module):
        return Verdict.make_try_again(f"fix_encoder_decoder returned {describe(fixed)}", "return the fixed model")
    leftover = _leftover(fixed)
    if leftover is not None:
        return leftover
    for name, (src, tgt, mask) in batches.items():  # (b)
        logits = _learner_logits(fixed, src, tgt, mask)
        if not isinstance(logits, torch.Tensor) or logits.shape != expected_logits[name].shape:
            return Verdict.make_try_again(f"(b) on {name} the fixed model's decoder returned {describe(logits)}",
                                          "keep the decoder and the encoder's forward as they are")
        if not torch.equal(logits, expected_logits[name]):
            gap = float((logits.float() - expected_logits[name]).abs().max())
            return Verdict.make_try_again(f"(b) the fixed model's decoder logits differ from the unfixed model's on "
                                          f"{name}: largest difference {gap:.3g}",
                                          "change the model you are given (its weights are trained) rather than "
                                          "build a new one")
    problems = (_changed(fixed, expected, trainable), _dead_weight_left(fixed), _checkpoint_keys(fixed, buggy_keys))
    for problem in problems:
        if problem is not None:
            return problem
    try:
        problem = _not_idempotent(fix_encoder_decoder, fixed)
    except LearnerCodeFailed as failure:
        return Verdict.make_try_again(f"(d) applied a second time, to a model already fixed: {failure.checked}",
                                      "the fix must be idempotent: a model without the weight comes back as it is; "
                                      "check before you remove (or set encoder.to_logits = None, as the clean "
                                      "build holds it)")
    if problem is not None:
        return problem
    try:
        model_bytes = pickle.dumps(fixed)
    except Exception as err:  # noqa: BLE001 - a model that cannot travel gets a verdict
        return Verdict.make_try_again(f"the fixed model cannot be sent to the ranks ({type(err).__name__}: {err})",
                                      "change the given model in place; do not wrap it in a class defined in the "
                                      "notebook")
    report = run_scenarios(DDPScenario("your_fix", model_bytes=model_bytes, debug="INFO"))["your_fix"]  # (a)
    if not report.ok:
        named = f"; parameters without gradient: {list(report.unused)}" if report.unused else ""
        return Verdict.make_try_again(
            "(a) real DDP on 2 processes: " + " | ".join(rank.line() for rank in report.ranks) + named,
            "find the parameters without gradient: your finder, or the names in the error")
    return Verdict.make_pass(f"(a) real DDP on 2 processes, find_unused_parameters=False: trained "
                             f"{report.scenario.steps} steps on every rank, ranks agree on parameters: "
                             f"{report.ranks_agree}; (b) decoder logits identical on {len(batches)} batches; (c) the "
                             f"checkpoint is the pre-fix one less {list(DEAD_KEYS)}; (d) the other "
                             f"{len(expected)} parameters untouched, and a second fix changes nothing")


def fix_reference(model: nn.Module) -> nn.Module:
    model.encoder.to_logits = None  # as the encoder is built without the bug; on a fixed model, a no-op
    return model


def _deletes_the_module(model):
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


def _asks_ddp_to_find_unused(model):
    model.find_unused_parameters = True  # "the fix": tell DDP to look for it
    return model


def _keeps_ddp_kwargs_with_the_flag(model):
    model.ddp_kwargs = {"find_unused_parameters": True}  # for whoever wraps it in DDP
    return model


def _removes_every_to_logits(model):
    for stack in (model.encoder, model.decoder):
        stack.to_logits = None
    return model


FIX_EXERCISE = Exercise(
    name="fix_encoder_decoder",
    prompt="fix_encoder_decoder(model): take the trained encoder–decoder that keeps an unused encoder.to_logits, "
           "remove the dead weight without touching anything else, and return the model; a model already fixed "
           "comes back unchanged (checked: (a) real DDP with find_unused_parameters=False trains it, (b) the "
           "decoder's logits are unchanged, (c) its checkpoint is the pre-fix one less encoder.to_logits.weight, "
           "(d) nothing else changes, and a second fix is a no-op)",
    checker=check_fix_encoder_decoder,
    reference=fix_reference,
    mistakes=(
        Mistake("freezes the unused weight", _freezes, "still stores"),
        Mistake("zeroes the unused weight", _zeroes, "zeroed, but still a trainable parameter"),
        Mistake("builds a fresh model instead", _rebuilds, "decoder logits differ"),
        Mistake("deletes the weight, keeps the module", _deletes_the_weight_only, "emptied of its weight"),
        Mistake("swaps the head for nn.Identity", _swaps_in_identity, "nn.Identity"),
        Mistake("sets find_unused_parameters=True as the fix", _asks_ddp_to_find_unused, "hides the unused weight"),
        Mistake("keeps DDP keyword arguments asking for find_unused_parameters", _keeps_ddp_kwargs_with_the_flag,
                "a request for find_unused_parameters=True"),
        Mistake("deletes the module without checking (fails on a fixed model)", _deletes_the_module,
                "applied a second time"),
        Mistake("removes the decoder's to_logits too", _removes_every_to_logits, "no longer computes the decoder's"),
    ),
    time_limit_s=20.0,
)
