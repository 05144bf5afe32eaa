"""Lab 05 exercise checkers: name a mystery model's unused parameters; predict which models DDP accepts."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from xtlab.exercises.verdict import Verdict, report
from xtlab.experiments.encoder_decoder_ddp_quiz import (
    QUIZ_MODELS,
    build_mystery_model,
    mystery_unused_names,
    quiz_answer_key,
)


def check_mystery_unused(learner_names: Iterable[str]) -> Verdict:
    """Exercise 1: the names of ``build_mystery_model()``'s trainable parameters that get no gradient."""
    if isinstance(learner_names, str) or not isinstance(learner_names, Iterable):
        return report(Verdict(False, f"give a list of parameter names (strings), not {learner_names!r:.80}"))
    given = [getattr(item, "name", item) for item in learner_names]  # UnusedParameter objects are fine too
    if not all(isinstance(name, str) for name in given):
        return report(Verdict(False, f"every item must be a parameter name string, but got {given!r:.120}"))
    expected = set(mystery_unused_names())
    known = {name for name, _ in build_mystery_model().named_parameters()}
    unknown = sorted(set(given) - known)
    if unknown:
        return report(Verdict(False, f"{unknown} are not parameters of the mystery model; "
                                     f"see [name for name, _ in model.named_parameters()]"))
    missing, extra = sorted(expected - set(given)), sorted(set(given) - expected)
    if not missing and not extra:
        return report(Verdict(True, f"exactly these {len(expected)} parameters get no gradient: {sorted(expected)}"))
    hints = []
    if missing:
        hints.append(f"{len(missing)} unused parameter(s) are missing from your list (read forward: which "
                     f"sub-modules does it never call?)")
    if extra:
        frozen = [name for name in extra if not dict(build_mystery_model().named_parameters())[name].requires_grad]
        hint = f"{extra} do get a gradient, or are not trainable"
        if frozen:
            hint += f" ({frozen} is frozen: requires_grad=False, so DDP ignores it and so does the finder)"
        hints.append(hint)
    return report(Verdict(False, "; ".join(hints)))


def check_ddp_predictions(predictions: Mapping[str, bool]) -> Verdict:
    """Exercise 2: for each model in ``QUIZ_MODELS``, True if DDP trains it without ``find_unused_parameters``."""
    if not isinstance(predictions, Mapping):
        return report(Verdict(False, f"give a dict {{model name: True/False}}, not {type(predictions).__name__}"))
    missing = sorted(set(QUIZ_MODELS) - set(predictions))
    unknown = sorted(set(predictions) - set(QUIZ_MODELS))
    if missing or unknown:
        return report(Verdict(False, f"predict every model exactly once: missing {missing}, unknown {unknown}; "
                                     f"the models are {list(QUIZ_MODELS)}"))
    not_bool = {name: value for name, value in predictions.items() if not isinstance(value, bool)}
    if not_bool:
        return report(Verdict(False, f"each prediction must be True or False, but got {not_bool}"))
    key = quiz_answer_key()
    wrong = [name for name in QUIZ_MODELS if predictions[name] != key[name]]
    if not wrong:
        return report(Verdict(True, f"all {len(key)} predictions right"))
    lines = [f"{name} ({QUIZ_MODELS[name][0]}): it {'runs' if key[name] else 'fails'}" for name in wrong]
    return report(Verdict(False, f"{len(wrong)} of {len(key)} wrong. Run find_unused_parameters on each "
                                 f"in training mode, more than once: " + "; ".join(lines)))
