"""Lab 02 exercises: tell tied from half-tied from untied, and fix a naive tie so it survives ``to_empty``."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from xtlab.course import Exercise, ExerciseSet, Mistake, Verdict, call, describe
from xtlab.labs.weight_tying.models import ModelSize, build_model, pair_verdict, tie_keys, tie_verdict
from xtlab.model.tied_linear import TiedLinear, tie_registered

_HINTS = {
    "tied": "the same object: compare with `a is b`",
    "half-tied": "different objects, same memory: compare a.untyped_storage().data_ptr() of both",
    "untied": "separate memory: equal values (torch.equal) do not make a tie",
}


def _tie_cases() -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    weight = nn.Parameter(torch.randn(4, 3, generator=torch.Generator().manual_seed(0)))
    other = nn.Parameter(torch.randn(4, 3, generator=torch.Generator().manual_seed(1)))
    return [
        ("the same Parameter twice", weight, weight),
        ("two Parameters over one storage (load_state_dict(assign=True) makes these)", weight,
         nn.Parameter(weight.data)),
        ("a second Parameter viewing all of the first's memory", weight, nn.Parameter(weight.data[:])),
        ("an equal-valued clone (same numbers, separate memory)", weight, nn.Parameter(weight.detach().clone())),
        ("two unrelated Parameters", weight, other),
    ]


def check_is_tied(is_tied: Callable[[torch.Tensor, torch.Tensor], str]) -> Verdict:
    """Check ``is_tied(a, b) -> "tied" | "half-tied" | "untied"`` on five pairs of tensors."""
    for description, a, b in _tie_cases():
        expected = pair_verdict(a, b)  # judged before the learner's code could touch a or b
        answer = call(is_tied, a, b, copy_args=False)  # a copy would not keep the identity being tested
        if answer != expected:
            return Verdict.try_again(f"for {description} you answered {describe(answer)}, expected {expected!r}",
                                     _HINTS[expected])
    return Verdict.passed("is_tied tells tied, half-tied and untied apart on all five pairs")


def check_fix_survives_to_empty(fix: Callable[[nn.Module], nn.Module]) -> Verdict:
    """Check ``fix(model) -> model`` that makes a naive-tied model keep its tie through ``to_empty``.

    The checker builds a naive-tied model on the meta device, calls ``fix`` on it, then ``to_empty(device="cpu")``,
    and requires: the tie holds, the state_dict has one key for it, and the model still computes logits.
    """
    size = ModelSize()
    model = call(fix, build_model("naive", device="meta", size=size), copy_args=False)
    if not isinstance(model, nn.Module):
        return Verdict.try_again(f"fix must return the model, but returned {describe(model)}",
                                 "end fix with `return model`")
    model.to_empty(device="cpu")
    verdict = tie_verdict(model)
    if verdict != "tied":
        return Verdict.try_again(f"after to_empty the embedding and output are {verdict}",
                                 "the output must read the embedding's weight at call time (try xtlab's TiedLinear)")
    keys = tie_keys(model)
    if len(keys) != 1:
        return Verdict.try_again(f"tied, but the state_dict holds the tie under {keys}: safetensors' save_file "
                                 "refuses that", "hold the embedding without registering it as a submodule")
    logits = model(torch.zeros(1, 4, dtype=torch.long))
    if logits.shape != (1, 4, size.num_tokens):
        return Verdict.try_again(f"the fixed model returns shape {tuple(logits.shape)}, expected "
                                 f"(1, 4, {size.num_tokens})", "keep token_emb and replace only to_logits")
    return Verdict.passed("the tie survives to_empty, with one state_dict key")


def _is_tied_reference(a, b):
    if a is b:
        return "tied"
    same_memory = a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()
    return "half-tied" if same_memory else "untied"


def _fix_reference(model):
    model.to_logits = TiedLinear(model.token_emb)
    return model


EXERCISES = ExerciseSet(
    Exercise(
        name="is_tied",
        prompt='is_tied(a, b): "tied" when a and b are the same Parameter, "half-tied" when they are distinct '
               'Parameters over the same memory, "untied" otherwise',
        checker=check_is_tied,
        reference=_is_tied_reference,
        mistakes=(
            Mistake("equal values taken for a tie",
                    lambda a, b: "tied" if torch.equal(a, b) else "untied",
                    "answered str 'tied', expected 'half-tied'"),
            Mistake("identity only: half-ties missed",
                    lambda a, b: "tied" if a is b else "untied", "answered str 'untied', expected 'half-tied'"),
            Mistake("shared memory only: true ties called half-tied",
                    lambda a, b: "half-tied" if a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()
                    else "untied", "a is b"),
        ),
    ),
    Exercise(
        name="fix",
        prompt="fix(model): change a naive-tied model (built on the meta device) so that its output layer stays "
               "tied to model.token_emb through to_empty, with one state_dict key, and return the model",
        checker=check_fix_survives_to_empty,
        reference=_fix_reference,
        mistakes=(
            Mistake("returns the naive model unchanged", lambda model: model, "TiedLinear"),
            Mistake("registers the embedding inside the output (Lingua's first fix)", tie_registered,
                    "state_dict holds the tie"),
            Mistake("forgets to return the model",
                    lambda model: setattr(model, "to_logits", TiedLinear(model.token_emb)), "return model"),
        ),
    ),
)
