"""Exercise 1: an unused-parameter finder for any module and batch, judged on three models and on a model that
already holds gradients from an earlier step."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn

from xtlab.course import Exercise, Mistake, Verdict, call, describe
from xtlab.labs.encoder_decoder_ddp.quiz import FINDER_CASES, build_finder_case, finder_answer_key, output_loss
from xtlab.threads import one_cpu_thread


def _names_or_verdict(given, where: str) -> list[str] | Verdict:
    if isinstance(given, (str, bytes)) or not isinstance(given, Iterable):
        return Verdict.make_try_again(
            f"{where} returned {describe(given)}", "return a list of parameter names (strings)")
    given = list(given)
    if not all(isinstance(name, str) for name in given):
        return Verdict.make_try_again(f"{where}: every item must be a parameter name string, but got {describe(given)}",
                                 "use the names from model.named_parameters()")
    return given


def _problems(given: list[str], expected: list[str], model: nn.Module) -> list[str]:
    parameters = dict(model.named_parameters())
    unknown = sorted(set(given) - set(parameters))
    if unknown:
        return [f"{unknown} are not parameters of the model"]
    missing, extra = sorted(set(expected) - set(given)), sorted(set(given) - set(expected))
    problems = []
    if missing:
        problems.append(f"{missing} get no gradient but are missing from your list")
    frozen = [name for name in extra if not parameters[name].requires_grad]
    if frozen:
        problems.append(f"{frozen} is frozen (requires_grad=False): DDP ignores it, so leave it out")
    used = [name for name in extra if parameters[name].requires_grad]
    if used:
        problems.append(f"{used} do get a gradient")
    return problems


def check_unused_parameter_names(unused_parameter_names: Callable[[nn.Module, tuple], Iterable[str]]) -> Verdict:
    """``unused_parameter_names(model, batch)``: run ``model(*batch)``, backpropagate from every tensor it returns,
    and name the trainable parameters left without a gradient."""
    for case, (description, _) in FINDER_CASES.items():
        model, batch = build_finder_case(case)
        with one_cpu_thread():
            given = call(unused_parameter_names, model, batch)
        given = _names_or_verdict(given, f"on {case}, unused_parameter_names")
        if isinstance(given, Verdict):
            return given
        problems = _problems(given, finder_answer_key(case), model)
        if problems:
            return Verdict.make_try_again(f"on {description}: " + "; ".join(problems),
                                     "after one backward pass, an unused trainable parameter is one whose .grad is "
                                     "still None (not zero)")
    model, batch = build_finder_case("mystery_tagger")
    for parameter in model.parameters():  # as mid-training: every parameter holds last step's gradient
        parameter.grad = torch.ones_like(parameter)
    with one_cpu_thread():  # not copied (a deep copy drops .grad): the model is a fresh one, built for this call
        given = call(unused_parameter_names, model, batch, copy_args=False)
    given = _names_or_verdict(given, "on a model holding old gradients, unused_parameter_names")
    if isinstance(given, Verdict):
        return given
    expected = finder_answer_key("mystery_tagger")
    if sorted(given) != sorted(expected):
        return Verdict.make_try_again(
            f"on a MysteryTagger that already holds gradients from an earlier step you returned "
                                 f"{sorted(given)}, expected {sorted(expected)}",
                                 "set every .grad to None before the backward pass (model.zero_grad(set_to_none="
                                 "True)): a gradient left from an earlier step hides an unused parameter")
    return Verdict.make_pass(f"right on all {len(FINDER_CASES)} models, and on one holding old gradients: "
                          f"{sum(len(finder_answer_key(case)) for case in FINDER_CASES)} unused parameters found")


def finder_reference(model: nn.Module, batch: tuple) -> list[str]:
    model.zero_grad(set_to_none=True)
    output_loss(model(*batch)).backward()
    return [name for name, p in model.named_parameters() if p.requires_grad and p.grad is None]


def _lists_frozen(model, batch):
    model.zero_grad(set_to_none=True)
    output_loss(model(*batch)).backward()
    return [name for name, p in model.named_parameters() if p.grad is None]


def _zero_gradients(model, batch):
    output_loss(model(*batch)).backward()
    return [name for name, p in model.named_parameters() if p.grad is not None and not p.grad.any()]


def _keeps_old_gradients(model, batch):
    output_loss(model(*batch)).backward()
    return [name for name, p in model.named_parameters() if p.requires_grad and p.grad is None]


def _sums_one_tensor(model, batch):
    model.zero_grad(set_to_none=True)
    model(*batch).sum().backward()
    return [name for name, p in model.named_parameters() if p.requires_grad and p.grad is None]


FINDER_EXERCISE = Exercise(
    name="unused_parameter_names",
    prompt="unused_parameter_names(model, batch): clear every .grad, run model(*batch), backpropagate from every "
           "tensor it returns (a tensor, or a tuple/list/dict of them) and return the names of the trainable "
           "parameters whose .grad is still None",
    checker=check_unused_parameter_names,
    reference=finder_reference,
    mistakes=(
        Mistake("lists frozen parameters too", _lists_frozen, "frozen"),
        Mistake("looks for zero gradients instead of missing ones", _zero_gradients, "missing"),
        Mistake("keeps the gradients of an earlier step", _keeps_old_gradients, "earlier step"),
        Mistake("assumes the model returns one tensor", _sums_one_tensor, "dict"),
    ),
)
