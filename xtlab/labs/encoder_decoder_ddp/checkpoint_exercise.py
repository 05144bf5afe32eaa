"""Exercise 4: load a checkpoint saved before the fix into the fixed model, handling the dead key explicitly.

``load_before_fix(model, state_dict)`` drops exactly the known dead key(s) (``DEAD_KEYS``: the encoder's
``to_logits.weight``) when present, loads everything else strictly, and returns the keys it dropped. Any other
unexpected or missing key is refused with a ``ValueError`` naming it, before anything is loaded: the model is left
as it was. The caller's ``state_dict`` is not changed.

Hidden cases: the pre-fix checkpoint; an already-fixed checkpoint (nothing to drop); a checkpoint with another stray
key (refused); a checkpoint missing a decoder key (refused). The pre-fix checkpoint into a model that still has the
bug is not a case: dropping the dead key only where the model lacks it is as right as dropping it always.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from xtlab.course import Case, Exercise, LearnerCodeFailed, Mistake, Verdict, call, case_failed, describe
from xtlab.labs.encoder_decoder_ddp.experiments import build_seq2seq_model
from xtlab.labs.encoder_decoder_ddp.fix_exercise import DEAD_KEYS, buggy_trained_model, fixed_trained_model

STRAY_KEY = "encoder.pooler.weight"  # a key no model of the lab has: from another architecture, or a typo
MISSING_KEY = "decoder.to_logits.weight"  # the decoder's head: a truncated or foreign checkpoint lacks it


def _fresh_fixed() -> nn.Module:
    """The model a checkpoint is loaded into: fixed, with other weights (seed 0) than the checkpoint's (seed 7)."""
    with torch.device("cpu"):
        return build_seq2seq_model(seed=0)


def _cases() -> list[tuple[Case, Callable[[], nn.Module], dict, str | None, list[str]]]:
    """``(case, model factory, checkpoint, key the refusal must name or None, keys it must report dropped)``."""
    before = buggy_trained_model().state_dict()
    after = fixed_trained_model().state_dict()
    stray = {**before, STRAY_KEY: torch.zeros(3, device="cpu")}
    missing = {key: value for key, value in before.items() if key != MISSING_KEY}
    return [
        (Case("a checkpoint saved before the fix, into the fixed model"), _fresh_fixed, before, None, list(DEAD_KEYS)),
        (Case("a checkpoint saved after the fix (nothing to drop)"), _fresh_fixed, after, None, []),
        (Case(f"a pre-fix checkpoint with a stray key {STRAY_KEY!r}"), _fresh_fixed, stray, STRAY_KEY, []),
        (Case(f"a pre-fix checkpoint without {MISSING_KEY!r}"), _fresh_fixed, missing, MISSING_KEY, []),
    ]


def _snapshot(mapping) -> dict[str, torch.Tensor]:
    return {key: value.detach().clone() for key, value in mapping.items()}


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def check_load_before_fix(load_before_fix: Callable[[nn.Module, dict], list[str]]) -> Verdict:
    """``load_before_fix(model, state_dict)`` loads a pre-fix checkpoint into the fixed model; see the module."""
    for case, factory, checkpoint, refused_key, dropped_keys in _cases():
        model = factory()
        given = dict(checkpoint)
        given_copy = _snapshot(given)
        model_before = _snapshot(model.state_dict())
        try:
            dropped = call(load_before_fix, model, given, copy_args=False)
        except LearnerCodeFailed as failure:
            if refused_key is None:
                return case_failed(case, failure.checked, f"drop only {list(DEAD_KEYS)} when it is there, and load "
                                                          f"the rest strictly")
            if not failure.checked.startswith("`load_before_fix` raised ValueError"):
                return case_failed(case, f"it raised, but not a ValueError: {failure.checked}",
                                   "check the keys yourself before loading and raise ValueError naming them "
                                   "(load_state_dict(strict=True) raises RuntimeError, and only after it has "
                                   "copied every matching tensor)")
            if refused_key not in failure.checked:
                return case_failed(case, f"the ValueError does not name {refused_key!r}: {failure.checked}",
                                   "name every unexpected and every missing key in the message")
            if not _same(_snapshot(model.state_dict()), model_before):
                return case_failed(case, "the model was changed before the refusal (a half-loaded model)",
                                   "check every key first; load only when the checkpoint is accepted")
            continue
        if not _same(_snapshot(given), given_copy):
            return case_failed(case, "your function changed the caller's state_dict (a key popped or a tensor "
                                     "written)", "work on a copy: dict(state_dict), then drop the dead key from it")
        if refused_key is not None:
            got = describe(dropped)
            return case_failed(case, f"it was accepted (returned {got}), but {refused_key!r} must be refused with a "
                                     f"ValueError naming it",
                               _acceptance_hint(refused_key, dropped))
        expected = {key: value for key, value in checkpoint.items() if key not in DEAD_KEYS}
        state = _snapshot(model.state_dict())
        wrong = sorted(key for key in expected if key not in state or not torch.equal(state[key], expected[key]))
        if wrong:
            extra = sorted(set(wrong) & set(dropped)) if isinstance(dropped, (list, tuple)) else []
            return case_failed(case, f"after loading, the model does not hold the checkpoint's {wrong[:3]}"
                                     f"{f' and {len(wrong) - 3} more' if len(wrong) > 3 else ''}",
                               f"you dropped {extra} too: only {list(DEAD_KEYS)} is dead (the decoder's to_logits "
                               f"is its output head)" if extra else
                               "load into the model you are given (in place), every key but the dead one")
        if not isinstance(dropped, (list, tuple)) or [str(k) for k in dropped] != dropped_keys:
            return case_failed(case, f"returned {describe(dropped)}, but the keys dropped were {dropped_keys}",
                               "return the list of the keys you dropped (say what you did with the checkpoint)")
    return Verdict.make_pass(f"{len(_cases())} hidden checkpoints: the pre-fix one loads with {list(DEAD_KEYS)} "
                             f"dropped and reported, an already-fixed one loads with nothing dropped, a stray key and "
                             f"a missing decoder key are refused by name before anything is loaded; the caller's dict "
                             f"is left as it was")


def _acceptance_hint(refused_key: str, dropped) -> str:
    if isinstance(dropped, (list, tuple)) and refused_key in dropped:
        return (f"you dropped {refused_key!r} as well: drop only the known dead key {list(DEAD_KEYS)}; any other "
                f"unexpected key means the checkpoint is not the model's")
    return ("strict=False accepts any unexpected or missing key silently: compare the checkpoint's keys with the "
            "model's own and refuse every difference but the dead key")


def load_reference(model: nn.Module, state_dict: dict) -> list[str]:
    state = dict(state_dict)
    dropped = [key for key in DEAD_KEYS if key in state]
    for key in dropped:
        del state[key]
    expected = set(model.state_dict())
    unexpected, missing = sorted(set(state) - expected), sorted(expected - set(state))
    if unexpected or missing:
        raise ValueError(f"checkpoint does not match the model: unexpected keys {unexpected}, missing keys {missing}")
    model.load_state_dict(state)
    return dropped


def _strict_false(model, state_dict):
    model.load_state_dict(state_dict, strict=False)
    return [key for key in DEAD_KEYS if key in state_dict]


def _pops_every_unexpected_key(model, state_dict):
    state = dict(state_dict)
    dropped = [key for key in state if key not in model.state_dict()]
    for key in dropped:
        del state[key]
    model.load_state_dict(state, strict=False)
    return dropped


def _lets_strict_load_raise(model, state_dict):
    state = dict(state_dict)
    dropped = [key for key in DEAD_KEYS if key in state]
    for key in dropped:
        del state[key]
    model.load_state_dict(state)  # RuntimeError, after copying every matching tensor
    return dropped


def _pops_from_the_callers_dict(model, state_dict):
    dropped = [key for key in DEAD_KEYS if key in state_dict]
    for key in dropped:
        state_dict.pop(key)
    return load_reference(model, state_dict) or dropped


def _loads_into_the_unfixed_model(model, state_dict):
    unfixed = build_seq2seq_model(encoder_keeps_logits=True)
    state = {key: value for key, value in state_dict.items() if key not in DEAD_KEYS}
    unfixed.load_state_dict(state, strict=False)
    return [key for key in DEAD_KEYS if key in state_dict]


def _drops_every_to_logits(model, state_dict):
    state = {key: value for key, value in state_dict.items() if "to_logits" not in key}
    model.load_state_dict(state, strict=False)
    return [key for key in state_dict if "to_logits" in key]


def _says_nothing(model, state_dict):
    state = dict(state_dict)
    for key in DEAD_KEYS:
        state.pop(key, None)
    load_reference(model, state)


CHECKPOINT_EXERCISE = Exercise(
    name="load_before_fix",
    prompt="load_before_fix(model, state_dict): load a checkpoint saved before the fix into the fixed model: drop "
           "exactly 'encoder.to_logits.weight' when present, load the rest strictly, return the list of dropped "
           "keys; refuse any other unexpected or missing key with a ValueError naming it, before loading anything, "
           "and leave the caller's state_dict as it was",
    checker=check_load_before_fix,
    reference=load_reference,
    mistakes=(
        Mistake("load_state_dict(strict=False) swallows everything", _strict_false, "strict=False accepts"),
        Mistake("pops every unexpected key", _pops_every_unexpected_key, "drop only the known dead key"),
        Mistake("lets load_state_dict(strict=True) raise", _lets_strict_load_raise, "not a ValueError"),
        Mistake("pops the dead key from the caller's dict", _pops_from_the_callers_dict, "the caller's state_dict"),
        Mistake("drops the key but loads into an unfixed model it builds", _loads_into_the_unfixed_model,
                "load into the model you are given"),
        Mistake("drops every key with to_logits in its name", _drops_every_to_logits,
                "only ['encoder.to_logits.weight'] is dead"),
        Mistake("does not say what it dropped", _says_nothing, "return the list of the keys you dropped"),
    ),
)
