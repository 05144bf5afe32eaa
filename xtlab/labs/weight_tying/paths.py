"""Put a tied model through one save/load or initialisation path and report, live, whether it is still tied.

Each path is a pure function ``path(style, seed) -> (model | None, facts)``; ``run_path`` wraps it into a
``PathOutcome`` with the verdict, the state_dict keys, the parameter count and the storage pointers.
Files go to a temporary directory that is removed before the function returns.
"""

from __future__ import annotations

import copy
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from xtlab.labs.weight_tying.models import (
    build_model,
    check_style,
    embedding_weight,
    output_weight,
    shares_storage,
    storage_pointer,
    tie_keys,
    tie_verdict,
)

EMBEDDING_KEY = "token_emb.weight"


@dataclass(frozen=True)
class PathOutcome:
    """What one path did to one tying style.

    Attributes:
        style, path: what ran.
        verdict: "tied" / "half-tied" / "untied" for the resulting model, or "error" when the path raised.
        error: ``"TypeName: message"`` when the path raised, else None.
        state_dict_keys: the embedding and output keys of the resulting model's state_dict.
        num_parameters: ``len(list(model.parameters()))`` (a tied weight counts once).
        pointers: storage addresses of the (embedding, output) weights.
        facts: path-specific measurements (e.g. which key won, how many inits touched the weight).
    """

    style: str
    path: str
    verdict: str
    error: str | None = None
    state_dict_keys: tuple[str, ...] = ()
    num_parameters: int = 0
    pointers: tuple[int, int] = (0, 0)
    facts: dict = field(default_factory=dict)
    model: nn.Module | None = field(default=None, repr=False, compare=False)


def _describe_error(err: Exception) -> str:
    return f"{type(err).__name__}: {' '.join(str(err).split())}"


def _fresh(style: str, seed: int) -> nn.Module:
    return build_model(style, seed=seed)


def _saved_and_loaded(model: nn.Module) -> dict[str, torch.Tensor]:
    """``model``'s state_dict after ``torch.save`` and ``torch.load(weights_only=True)`` (shared storage is kept)."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.pt")
        torch.save(model.state_dict(), path)
        return torch.load(path, weights_only=True)


def path_as_built(style: str, seed: int):
    return _fresh(style, seed), {}


def path_torch_save_load(style: str, seed: int):
    """``torch.save(state_dict)`` -> ``torch.load(weights_only=True)`` -> ``load_state_dict`` into a new model."""
    source = _fresh(style, seed)
    target = _fresh(style, seed + 1)
    target.load_state_dict(_saved_and_loaded(source))
    return target, {"values_restored": torch.equal(embedding_weight(target), embedding_weight(source))}


def path_conflicting_keys(style: str, seed: int):
    """Load a checkpoint whose embedding and output keys hold different values; report which one won."""
    source = _fresh(style, seed)
    state = {key: value.clone() for key, value in source.state_dict().items()}
    keys = tie_keys(source)
    target = _fresh(style, seed + 1)
    if style == "none":  # two independent weights: different values are expected, not a conflict
        target.load_state_dict(state)
        return target, {"keys": keys, "conflict_possible": False}
    if len(keys) < 2:
        # one key: a conflicting value has nowhere to live; an injected second key is refused by strict loading
        injected = dict(state, **{"to_logits.weight": torch.zeros_like(state[EMBEDDING_KEY])})
        try:
            target.load_state_dict(injected)
            refused = False
        except RuntimeError:
            refused = True
        target.load_state_dict(state)
        return target, {"keys": keys, "conflict_possible": False, "extra_key_refused": refused}
    first, last = keys[0], keys[-1]
    state[first] = torch.full_like(state[first], 1.0)
    state[last] = torch.full_like(state[last], 2.0)
    target.load_state_dict(state)  # no error, no warning
    emb, out = embedding_weight(target), output_weight(target)
    winner = last if torch.all(emb == 2.0) else first if torch.all(emb == 1.0) else None
    return target, {"keys": keys, "conflict_possible": True, "loaded_silently": True, "winner": winner,
                    "output_matches_embedding": torch.equal(emb, out)}


def path_assign(style: str, seed: int):
    """``load_state_dict(state, assign=True)`` from a ``torch.load``-ed checkpoint (which keeps shared storage)."""
    target = _fresh(style, seed + 1)
    target.load_state_dict(_saved_and_loaded(_fresh(style, seed)), assign=True)
    return target, {}


def path_safetensors(style: str, seed: int):
    """``safetensors.torch.save_file(state_dict)`` then ``load_file`` -> ``load_state_dict``."""
    source = _fresh(style, seed)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.safetensors")
        save_file(source.state_dict(), path)  # raises for tensors that share memory
        state = load_file(path)
    target = _fresh(style, seed + 1)
    target.load_state_dict(state)
    return target, {"tensors_saved_for_tie": sum(key in state for key in tie_keys(source))}


def path_meta_to_empty(style: str, seed: int):
    """Build on the ``meta`` device (no memory), then ``to_empty(device="cpu")`` to allocate."""
    model = build_model(style, seed=seed, device="meta")
    model.to_empty(device="cpu")  # uninitialised memory: fill it with the initial values, as a loader does
    model.load_state_dict(_fresh(style, seed).state_dict())
    return model, {}


def _new_parameters(module: nn.Module) -> None:
    # the kind of init function that makes fresh Parameters instead of filling the old ones
    if isinstance(module, (nn.Linear, nn.Embedding)):
        module.weight = nn.Parameter(torch.randn_like(module.weight) * 0.02)


def path_apply_new_parameters(style: str, seed: int):
    """``model.apply(fn)`` where ``fn`` assigns a new ``nn.Parameter`` to every Linear and Embedding weight."""
    model = _fresh(style, seed)
    model.apply(_new_parameters)
    return model, {}


def path_init_order(style: str, seed: int):
    """In-place init of every Linear, then every Embedding; count the inits that wrote the embedding's memory."""
    model = _fresh(style, seed)
    emb = embedding_weight(model)
    writes = []
    with torch.no_grad():
        for kind, std in ((nn.Linear, 0.02), (nn.Embedding, 1.0)):
            for module in model.modules():  # modules() visits a shared module once
                if isinstance(module, kind):
                    module.weight.normal_(0.0, std)
                    if shares_storage(module.weight, emb):
                        writes.append(kind.__name__)
    out_std = float(output_weight(model).detach().std())
    return model, {"inits_on_embedding_memory": len(writes), "init_order": writes,
                   "output_std_is_linear_init": abs(out_std - 0.02) < 0.01}


def _copy_facts(original: nn.Module, copied: nn.Module) -> dict:
    return {"independent_of_original": not shares_storage(embedding_weight(copied), embedding_weight(original))
            and not shares_storage(output_weight(copied), embedding_weight(original))}


def path_deepcopy(style: str, seed: int):
    original = _fresh(style, seed)
    copied = copy.deepcopy(original)
    return copied, _copy_facts(original, copied)


def path_to_float64(style: str, seed: int):
    model = _fresh(style, seed).to(torch.float64)
    return model, {"dtype": str(output_weight(model).dtype)}


def path_half(style: str, seed: int):
    model = _fresh(style, seed).half()
    return model, {"dtype": str(output_weight(model).dtype)}


PATHS: dict[str, tuple[str, Callable]] = {
    "as_built": ("as built (no path)", path_as_built),
    "torch_save_load": ("torch.save -> torch.load(weights_only=True)", path_torch_save_load),
    "conflicting_keys": ("checkpoint with conflicting keys", path_conflicting_keys),
    "assign": ("load_state_dict(assign=True)", path_assign),
    "safetensors": ("safetensors save_file", path_safetensors),
    "meta_to_empty": ("meta -> to_empty", path_meta_to_empty),
    "apply_new_parameters": ("apply(fn) with new Parameters", path_apply_new_parameters),
    "init_order": ("in-place init, Linear then Embedding", path_init_order),
    "deepcopy": ("copy.deepcopy", path_deepcopy),
    "to_float64": (".to(float64)", path_to_float64),
    "half": (".half()", path_half),
}


def run_path(style: str, path: str, seed: int = 0) -> PathOutcome:
    """Build a tiny model tied in ``style``, put it through ``path`` and inspect the result.

    Args:
        style: one of ``models.STYLES``.
        path: one of ``PATHS``.
        seed: model seed (the target of a load uses ``seed + 1`` so a load that did nothing shows).

    Returns:
        A ``PathOutcome``; a path that raises gives verdict ``"error"`` and the error text.
    """
    check_style(style)
    if path not in PATHS:
        raise ValueError(f"path must be one of {sorted(PATHS)}, but got {path!r}")
    try:
        model, facts = PATHS[path][1](style, seed)
    except (RuntimeError, ValueError) as err:
        return PathOutcome(style, path, "error", error=_describe_error(err))
    pointers = (storage_pointer(embedding_weight(model)), storage_pointer(output_weight(model)))
    return PathOutcome(style, path, tie_verdict(model), None, tuple(tie_keys(model)), len(list(model.parameters())),
                       pointers, facts, model)
