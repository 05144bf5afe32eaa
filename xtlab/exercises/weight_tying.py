"""Lab 02 exercises: tell tied from aliased from untied, and fix a naive tie so it survives ``to_empty``."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from xtlab.exercises.verdict import Verdict, report
from xtlab.experiments.weight_tying_models import ModelSize, build_model, pair_verdict, tie_keys, tie_verdict


def _tie_cases() -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    weight = nn.Parameter(torch.randn(4, 3))
    return [
        ("the same Parameter twice", weight, weight),
        ("two Parameters over one storage (load_state_dict(assign=True) makes these)", weight,
         nn.Parameter(weight.data)),
        ("a second Parameter viewing all of the first's memory", weight, nn.Parameter(weight.data[:])),
        ("an equal-valued clone (same numbers, separate memory)", weight, nn.Parameter(weight.detach().clone())),
        ("two unrelated Parameters", weight, nn.Parameter(torch.randn(4, 3))),
    ]


def check_is_tied(is_tied: Callable[[torch.Tensor, torch.Tensor], str]) -> Verdict:
    """Check a learner's ``is_tied(a, b) -> "tied" | "aliased" | "untied"`` on five pairs of tensors."""
    if not callable(is_tied):
        return report(Verdict(False, f"pass your function itself, e.g. check_is_tied(is_tied), not {is_tied!r}"))
    for description, a, b in _tie_cases():
        expected = pair_verdict(a, b)
        try:
            answer = is_tied(a, b)
        except Exception as err:  # the learner's code raised: say which case
            return report(Verdict(False, f"is_tied raised {type(err).__name__}: {err} on {description}"))
        if answer != expected:
            hint = {
                "tied": "same object: compare with `a is b`",
                "aliased": "different objects, same memory: compare a.untyped_storage().data_ptr() of both",
                "untied": "separate memory: equal values (torch.equal) do not make a tie",
            }[expected]
            return report(Verdict(False, f"for {description} you answered {answer!r}, expected {expected!r} ({hint})"))
    return report(Verdict(True, "is_tied tells tied, aliased and untied apart on all five pairs"))


def check_fix_survives_to_empty(fix: Callable[[nn.Module], nn.Module]) -> Verdict:
    """Check a learner's ``fix(model) -> model`` that makes a naive-tied model keep its tie through ``to_empty``.

    The checker builds a naive-tied model on the meta device, calls ``fix`` on it, then ``to_empty(device="cpu")``,
    and requires: the tie holds, the state_dict has one key for it, and the model still computes logits.
    """
    if not callable(fix):
        return report(Verdict(False, f"pass your function itself, e.g. check_fix_survives_to_empty(fix), not {fix!r}"))
    size = ModelSize()
    try:
        model = fix(build_model("naive", device="meta", size=size))
    except Exception as err:  # the learner's code raised
        return report(Verdict(False, f"fix raised {type(err).__name__}: {err}"))
    if not isinstance(model, nn.Module):
        return report(Verdict(False, f"fix must return the model, but returned {type(model).__name__}"))
    model.to_empty(device="cpu")
    verdict = tie_verdict(model)
    if verdict != "tied":
        return report(Verdict(False, f"after to_empty the embedding and output are {verdict}: the output must read "
                                     "the embedding's weight at call time (try xtlab's TiedLinear)"))
    keys = tie_keys(model)
    if len(keys) != 1:
        return report(Verdict(False, f"tied, but the state_dict holds the tie under {keys}: safetensors' save_file "
                                     "refuses that; hold the embedding without registering it as a submodule"))
    logits = model(torch.zeros(1, 4, dtype=torch.long))
    if logits.shape != (1, 4, size.num_tokens):
        return report(Verdict(False, f"the fixed model returns shape {tuple(logits.shape)}, expected "
                                     f"(1, 4, {size.num_tokens})"))
    return report(Verdict(True, "the tie survives to_empty, with one state_dict key"))
