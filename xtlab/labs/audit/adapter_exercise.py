"""Exercise: write the adapter that lets the audit drive TinyLM, a model the course did not build your way.

The checker builds TinyLMs of two sizes, asks the learner's ``adapter_for_tiny_lm(model)`` for an adapter, checks
each hook against the reference, then audits TinyLM with it and compares the report card with the reference's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from xtlab.course import Exercise, Mistake, Verdict, call, describe
from xtlab.course.exercise import LearnerCodeFailed
from xtlab.diagnostics.model_audit import ModelAdapter, audit
from xtlab.diagnostics.ties import TieStatus, embedding_output_tie
from xtlab.labs.audit.tiny_lm import (
    build_tiny_lm,
    tiny_lm_adapter,
    tiny_lm_forward,
    tiny_lm_get_block_drop,
    tiny_lm_loss,
    tiny_lm_set_block_drop,
)
from xtlab.threads import one_cpu_thread

CASES = ({"num_tokens": 32, "max_len": 16}, {"num_tokens": 50, "max_len": 12})


class CallOnly(nn.Module):
    """What ``DistributedDataParallel`` hands the loss: a module that forwards calls and has none of the model's
    attributes (``num_tokens``, ``max_len``)."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)


def _receives_token_ids(model, path: str, tokens: Tensor) -> bool | None:
    """Whether the module at ``path`` is called with integer ids in a forward pass (None: never called)."""
    target = model
    for part in path.split("."):
        target = getattr(target, part, None)
    if not isinstance(target, nn.Module):
        return None
    seen: list[bool] = []
    handle = target.register_forward_hook(
        lambda module, inputs, output: seen.append(bool(inputs) and not torch.is_floating_point(inputs[0])))
    try:
        with torch.no_grad():
            model(tokens)
    finally:
        handle.remove()
    return any(seen) if seen else None
SKIP_PROBES = 12


def _hook_problem(adapter: ModelAdapter, model, sizes: dict) -> Verdict | None:
    """The first hook of ``adapter`` that disagrees with the reference on ``model``, as a verdict."""
    where = f"on TinyLM({sizes})"
    first = call(adapter.make_batch, model, torch.Generator().manual_seed(1))
    again = call(adapter.make_batch, model, torch.Generator().manual_seed(1))
    other = call(adapter.make_batch, model, torch.Generator().manual_seed(2))
    if not (isinstance(first, tuple) and first and isinstance(first[0], Tensor)):
        return Verdict.make_try_again(f"make_batch {where} returned {describe(first)}",
                                 "return a tuple whose first item is a (batch, n) tensor of token ids")
    tokens = first[0]
    if tokens.dtype != torch.long or tokens.ndim != 2 or not 2 <= tokens.shape[1] <= sizes["max_len"]:
        return Verdict.make_try_again(
            f"make_batch {where} gave tokens of dtype {tokens.dtype}, shape {tuple(tokens.shape)}",
                                 f"token ids: a (batch, n) int64 tensor with 2 <= n <= max_len ({sizes['max_len']})")
    if int(tokens.min()) < 0 or int(tokens.max()) >= sizes["num_tokens"]:
        return Verdict.make_try_again(f"make_batch {where} drew ids from {int(tokens.min())} to {int(tokens.max())}",
                                 f"ids must lie in [0, model.num_tokens) = [0, {sizes['num_tokens']})")
    if not torch.equal(tokens, again[0]) or torch.equal(tokens, other[0]):
        return Verdict.make_try_again(f"make_batch {where}: the same seeded generator gave different batches, or two "
                                 f"seeds gave the same one",
                                 "draw every random number from the generator argument (generator=generator), "
                                 "never from torch's global random state")
    model.eval()
    loss = call(adapter.loss, model, first)
    expected = tiny_lm_loss(model, first)
    if not isinstance(loss, Tensor) or loss.numel() != 1:
        return Verdict.make_try_again(f"loss {where} returned {describe(loss)}", "return a scalar tensor")
    if not torch.allclose(loss.detach().float(), expected.detach(), atol=1e-5):
        logits = tiny_lm_forward(model, first)
        unshifted = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens.reshape(-1))
        hint = "next-token cross-entropy: logits of tokens[:, :-1] against targets tokens[:, 1:]"
        if torch.allclose(loss.detach().float(), unshifted.detach(), atol=1e-5):
            hint = "your loss asks each position to predict its own token: shift the targets by one"
        return Verdict.make_try_again(
            f"loss {where} was {float(loss.detach()):.4f}, expected {float(expected.detach()):.4f}", hint)
    try:
        call(adapter.loss, CallOnly(model), first, copy_args=False)
    except LearnerCodeFailed as err:
        return Verdict.make_try_again(
            f"loss {where} raised on the model wrapped as DistributedDataParallel wraps it: {err.args[0]}",
            "the loss may only call model(...): under DistributedDataParallel the model has no num_tokens or other "
            "attributes (take sizes from the logits and the batch)")
    if adapter.embedding is None:
        return Verdict.make_try_again("your adapter names no embedding/output pair, so the tie check cannot run",
                                 "embedding= and output= are the attribute paths of TinyLM's embedding and head")
    try:
        tie = embedding_output_tie(model, adapter.embedding, adapter.output)
    except (TypeError, ValueError) as err:
        return Verdict.make_try_again(f"embedding={adapter.embedding!r}, output={adapter.output!r} {where}: {err}",
                                 "give the paths of the two modules (print(model) shows them), not of weights")
    if tie != TieStatus.TIED:
        return Verdict.make_try_again(f"embedding={adapter.embedding!r} and output={adapter.output!r} are {tie.value}",
                                 "name the token embedding and the output projection that reads its weight")
    if _receives_token_ids(model, adapter.embedding, tokens) is not True:
        return Verdict.make_try_again(
            f"embedding={adapter.embedding!r} {where}: that module is not the one the forward pass feeds token ids",
            "embedding= names the module that turns token ids into vectors, output= the one that makes the "
            "logits: are the two swapped?")
    return _layer_dropout_problem(adapter, model, where)


def _layer_dropout_problem(adapter: ModelAdapter, model, where: str) -> Verdict | None:
    if not adapter.has_layer_dropout:
        return Verdict.make_try_again("your adapter has no layer-dropout hooks",
                                 "TinyLM skips blocks in training: give get_layer_dropout and set_layer_dropout")
    if adapter.xl_step is not None:
        return Verdict.make_try_again("your adapter gives xl_step, but TinyLM keeps no memories",
                                 "leave xl_step out (None): the XL checks then could not run (missing capability)")
    got = call(adapter.get_layer_dropout, model)
    if got != model.block_drop:
        return Verdict.make_try_again(f"get_layer_dropout {where} returned {describe(got)}, but the model skips blocks "
                                 f"with probability {model.block_drop}", "read the attribute the forward pass reads")
    model.train()
    skipped = []
    for probe in (0.0, 0.9):
        call(adapter.set_layer_dropout, model, probe, copy_args=False)
        torch.manual_seed(0)
        count = 0
        with torch.no_grad():
            for _ in range(SKIP_PROBES):
                model(torch.zeros(1, 4, dtype=torch.long))
                count += len(model.last_skipped)
        skipped.append(count)
    if skipped[0] != 0 or skipped[1] == 0:
        return Verdict.make_try_again(
            f"after set_layer_dropout(model, 0.0) the model still skipped {skipped[0]} blocks in "
                                 f"{SKIP_PROBES} passes; after 0.9 it skipped {skipped[1]}",
                                 "TinyLM reads its layer dropout from model.block_drop: set that attribute")
    return None


def check_adapter_for_tiny_lm(adapter_for_tiny_lm) -> Verdict:
    """Each hook against the reference on two sizes, then the whole report card against the reference's."""
    with one_cpu_thread():  # tiny models: one thread is many times faster on a small, busy CPU
        return _check_adapter(adapter_for_tiny_lm)


def _check_adapter(adapter_for_tiny_lm) -> Verdict:
    for sizes in CASES:
        adapter = call(adapter_for_tiny_lm, build_tiny_lm(0, **sizes))
        if not isinstance(adapter, ModelAdapter):
            return Verdict.make_try_again(f"adapter_for_tiny_lm(model) returned {describe(adapter)}",
                                     "return ModelAdapter(name=..., make_batch=..., loss=..., ...)")
        problem = _hook_problem(adapter, build_tiny_lm(0, **sizes), sizes)
        if problem is not None:
            return problem
    model = build_tiny_lm(0, value_head=True)
    yours = audit(model, call(adapter_for_tiny_lm, model), ddp=False, steps=6)
    reference = audit(model, tiny_lm_adapter(model), ddp=False, steps=6)
    differ = [row.key for row, expected in zip(yours.rows, reference.rows, strict=True)
              if row.status != expected.status]
    if differ:
        return Verdict.make_try_again(f"with your adapter the report card differs from the reference on {differ}",
                                 "compare your card with the reference's row by row: print(audit(model, adapter))")
    return Verdict.make_pass(f"your adapter drives TinyLM at {len(CASES)} sizes, and the audit with it gives the "
                          f"reference's report card on all {len(yours.rows)} rows")


def _unshifted_loss(model, batch):
    tokens = batch[0]
    logits = model(tokens)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens.reshape(-1))


def _global_random_batch(model, generator):
    return (torch.randint(0, model.num_tokens, (2, model.max_len)),)


def _attribute_loss(model, batch):
    tokens = batch[0]
    logits = model(tokens[:, :-1])
    return F.cross_entropy(logits.reshape(-1, model.num_tokens), tokens[:, 1:].reshape(-1))


def _wrong_attribute(model, p):
    model.layer_dropout = p


def _mistake(**changes):
    def adapter_for_tiny_lm(model):
        fields = dict(name="TinyLM", make_batch=tiny_lm_adapter(model).make_batch, loss=tiny_lm_loss,
                      forward=tiny_lm_forward, embedding="embed", output="head",
                      get_layer_dropout=tiny_lm_get_block_drop, set_layer_dropout=tiny_lm_set_block_drop)
        return ModelAdapter(**{**fields, **changes})

    return adapter_for_tiny_lm


ADAPTER_EXERCISE = Exercise(
    name="adapter_for_tiny_lm",
    prompt="adapter_for_tiny_lm(model): a ModelAdapter for TinyLM (make_batch from the generator, next-token loss, "
           "forward, the embedding/output pair, get/set of its layer dropout; no xl_step)",
    checker=check_adapter_for_tiny_lm,
    reference=tiny_lm_adapter,
    mistakes=(
        Mistake("loss without shifting the targets", _mistake(loss=_unshifted_loss), "shift the targets"),
        Mistake("batch drawn from global random state", _mistake(make_batch=_global_random_batch), "generator"),
        Mistake("layer dropout written to an attribute TinyLM never reads",
                _mistake(set_layer_dropout=_wrong_attribute), "block_drop"),
        Mistake("weights named instead of modules", _mistake(embedding="embed.weight", output="head.weight"),
                "not of weights"),
        Mistake("embedding and output paths swapped (the tie looks the same both ways)",
                _mistake(embedding="head", output="embed"), "swapped"),
        Mistake("loss reads model.num_tokens (fails under DistributedDataParallel)", _mistake(loss=_attribute_loss),
                "only call model(...)"),
    ),
)
