"""Lab 05 exercises: write an unused-parameter finder; predict which models DDP trains without help."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import torch
from torch import nn

from xtlab.course import Exercise, ExerciseSet, Mistake, Verdict, call, describe
from xtlab.course.answers import mapping_problem
from xtlab.labs.encoder_decoder_ddp.quiz import (
    QUIZ_MODELS,
    build_mystery_model,
    mystery_loss_fn,
    mystery_unused_names,
    quiz_answer_key,
)
from xtlab.threads import one_cpu_thread


def check_unused_parameter_names(unused_parameter_names: Callable[..., Iterable[str]]) -> Verdict:
    """``unused_parameter_names(model, loss_fn)``: the names of ``model``'s trainable parameters that get no
    gradient from ``loss_fn(model).backward()``; judged on the mystery model."""
    with one_cpu_thread():
        given = call(unused_parameter_names, build_mystery_model(), mystery_loss_fn)
    if isinstance(given, (str, bytes)) or not isinstance(given, Iterable):
        return Verdict.try_again(f"unused_parameter_names returned {describe(given)}",
                                 "return a list of parameter names (strings)")
    given = list(given)
    if not all(isinstance(name, str) for name in given):
        return Verdict.try_again(f"every item must be a parameter name string, but got {describe(given)}",
                                 "use the names from model.named_parameters()")
    expected = set(mystery_unused_names())
    parameters = dict(build_mystery_model().named_parameters())
    unknown = sorted(set(given) - set(parameters))
    if unknown:
        return Verdict.try_again(f"{unknown} are not parameters of the mystery model",
                                 "see [name for name, _ in model.named_parameters()]")
    missing, extra = sorted(expected - set(given)), sorted(set(given) - expected)
    if not missing and not extra:
        return Verdict.passed(f"exactly these {len(expected)} parameters get no gradient: {sorted(expected)}")
    problems = []
    if missing:
        problems.append(f"{len(missing)} unused parameter(s) are missing from your list")
    frozen = [name for name in extra if not parameters[name].requires_grad]
    if frozen:
        problems.append(f"{frozen} is frozen (requires_grad=False): DDP ignores it, so leave it out")
    used = [name for name in extra if parameters[name].requires_grad]
    if used:
        problems.append(f"{used} do get a gradient")
    return Verdict.try_again("; ".join(problems), "after one backward pass, an unused trainable parameter is one "
                                                  "whose .grad is still None")


def check_ddp_predictions(ddp_predictions: Callable[[], Mapping[str, bool]]) -> Verdict:
    """``ddp_predictions()``: for each model in ``QUIZ_MODELS``, True if DDP trains it without
    ``find_unused_parameters``."""
    predictions = call(ddp_predictions)
    problem = mapping_problem(predictions, QUIZ_MODELS, (True, False), "ddp_predictions()")
    if problem is not None:
        return problem
    key = quiz_answer_key()
    wrong = [name for name in QUIZ_MODELS if predictions[name] != key[name]]
    if not wrong:
        return Verdict.passed(f"all {len(key)} predictions right")
    lines = [f"{name} ({QUIZ_MODELS[name][0]}): it {'runs' if key[name] else 'fails'}" for name in wrong]
    return Verdict.try_again(f"{len(wrong)} of {len(key)} wrong: " + "; ".join(lines),
                             "run find_unused_parameters on each in training mode, more than once")


def _finder_reference(model: nn.Module, loss_fn: Callable[[nn.Module], torch.Tensor]) -> list[str]:
    model.zero_grad(set_to_none=True)
    loss_fn(model).backward()
    return [name for name, parameter in model.named_parameters() if parameter.requires_grad and parameter.grad is None]


def _forgets_frozen(model, loss_fn):
    model.zero_grad(set_to_none=True)
    loss_fn(model).backward()
    return [name for name, parameter in model.named_parameters() if parameter.grad is None]


def _looks_for_zero_gradients(model, loss_fn):
    loss_fn(model).backward()
    return [name for name, parameter in model.named_parameters()
            if parameter.grad is not None and not parameter.grad.any()]


def _names_with_gradient(model, loss_fn):
    loss_fn(model).backward()
    return [name for name, parameter in model.named_parameters() if parameter.grad is not None]


_RIGHT_PREDICTIONS = {"fixed": True, "bug": False, "frozen_bug": True, "tied_decoder": True, "layer_dropout": False}

EXERCISES = ExerciseSet(
    Exercise(
        name="unused_parameter_names",
        prompt="unused_parameter_names(model, loss_fn): run loss_fn(model).backward() once and return the names "
               "of the trainable parameters that got no gradient",
        checker=check_unused_parameter_names,
        reference=_finder_reference,
        mistakes=(
            Mistake("lists frozen parameters too", _forgets_frozen, "frozen"),
            Mistake("looks for zero gradients instead of missing ones", _looks_for_zero_gradients, "missing"),
            Mistake("lists the parameters that got a gradient", _names_with_gradient, "do get a gradient"),
        ),
    ),
    Exercise(
        name="ddp_predictions",
        prompt="ddp_predictions(): a dict {model name: True/False} for every model in QUIZ_MODELS, True where DDP "
               "trains it without find_unused_parameters",
        checker=check_ddp_predictions,
        reference=lambda: dict(_RIGHT_PREDICTIONS),
        mistakes=(
            Mistake("thinks a frozen unused weight still breaks DDP",
                    lambda: {**_RIGHT_PREDICTIONS, "frozen_bug": False}, "frozen_bug"),
            Mistake("thinks layer dropout is harmless under DDP",
                    lambda: {**_RIGHT_PREDICTIONS, "layer_dropout": True}, "layer_dropout"),
            Mistake("strings instead of booleans", lambda: {k: str(v) for k, v in _RIGHT_PREDICTIONS.items()},
                    "True or False"),
        ),
    ),
)
