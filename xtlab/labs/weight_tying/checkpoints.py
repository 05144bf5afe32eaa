"""Save and load each tying style: xtlab's safe checkpoints (safetensors, a tied weight stored once), and the broken
save/load function exercise 3 repairs."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from xtlab.diagnostics.checkpoints import load_checkpoint, save_checkpoint
from xtlab.labs.weight_tying.models import build_model, check_style, embedding_weight, tie_verdict


@dataclass(frozen=True)
class SafeRoundTrip:
    """One style through ``save_checkpoint`` -> ``load_checkpoint``.

    Attributes:
        tensors_in_file: tensors the safetensors file holds; state_dict_keys: keys the model's state_dict has.
        verdict: tie verdict of the model the checkpoint was loaded into.
        values_restored: the loaded embedding equals the saved one.
        conflicting_refused: a checkpoint whose tied keys disagree is refused (None when the style has one key).
    """

    style: str
    tensors_in_file: int
    state_dict_keys: int
    verdict: str
    values_restored: bool
    conflicting_refused: bool | None


def safe_round_trip(style: str, seed: int = 0) -> SafeRoundTrip:
    """Save a ``style`` model with ``save_checkpoint`` and load it into a fresh one with ``load_checkpoint``."""
    check_style(style)
    source, target = build_model(style, seed=seed), build_model(style, seed=seed + 1)
    state = source.state_dict()
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.safetensors")
        save_checkpoint(source, path)
        with safe_open(path, framework="pt") as handle:
            tensors_in_file = len(list(handle.keys()))
        load_checkpoint(target, path)
        conflicting_refused = None
        output_keys = [key for key in state if key.startswith("to_logits.")]
        if style != "none" and output_keys:
            conflicting = {key: value.clone() for key, value in state.items()}
            conflicting[output_keys[0]] += 1.0
            bad_path = os.path.join(folder, "conflicting.pt")
            torch.save(conflicting, bad_path)
            try:
                load_checkpoint(build_model(style, seed=seed), bad_path)
                conflicting_refused = False
            except ValueError:
                conflicting_refused = True
    return SafeRoundTrip(style, tensors_in_file, len(state), tie_verdict(target),
                         torch.equal(embedding_weight(target), embedding_weight(source)), conflicting_refused)


def broken_save_and_load(model: nn.Module, folder: str, build) -> nn.Module:
    """Teaching exhibit (exercise 3 repairs it): a "fast" save and load that breaks ties.

    ``save_file`` refuses tensors that share memory (a naive tie), and ``assign=True`` swaps in the file's tensors
    as new Parameters, so a tie made by assignment comes back half-tied.
    """
    path = os.path.join(folder, "model.safetensors")
    save_file(model.state_dict(), path)
    loaded = build()
    loaded.load_state_dict(load_file(path), assign=True)
    return loaded
