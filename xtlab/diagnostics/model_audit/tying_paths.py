"""Does the embedding/output tie survive the six ways a model is saved and loaded, and ``copy.deepcopy``?

Each path runs on the audited model itself (a generic model cannot be rebuilt from nothing): its state is
saved, its parameters are overwritten, the path loads the state back, and the tie is inspected with
``embedding_output_tie``; then :class:`ModelSnapshot` puts the model back exactly as it was.
"""

from __future__ import annotations

import copy
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass

import torch
from safetensors.torch import load_file, load_model, save_file, save_model
from torch import nn

from xtlab.diagnostics.checkpoints import load_checkpoint, save_checkpoint
from xtlab.diagnostics.model_audit.model_state import ModelSnapshot
from xtlab.diagnostics.model_audit.rows import short_error
from xtlab.diagnostics.ties import TieStatus, embedding_output_tie

OVERWRITE_VALUE = 0.125  # what every parameter holds before a load: a load that does nothing shows


@dataclass(frozen=True)
class PathOutcome:
    """What one path did to the tie.

    Attributes:
        path: the path, in words.
        tie: ``"tied"``, ``"half-tied"``, ``"untied"``, or ``"error"`` when the path raised.
        values_restored: whether the model held its saved values afterwards.
        error: the error text when the path raised, else ``""``.
    """

    path: str
    tie: str
    values_restored: bool
    error: str = ""

    @property
    def holds(self) -> bool:
        return self.tie == TieStatus.TIED.value and self.values_restored

    def __str__(self) -> str:
        if self.error:
            return f"{self.path}: error ({self.error})"
        restored = "" if self.values_restored else ", values NOT restored"
        return f"{self.path}: {self.tie}{restored}"


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def _overwrite(model: nn.Module) -> None:
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.fill_(OVERWRITE_VALUE)


def _torch_save_load(model: nn.Module, folder: str, *, assign: bool = False) -> nn.Module:
    path = os.path.join(folder, "model.pt")
    torch.save(model.state_dict(), path)
    _overwrite(model)
    model.load_state_dict(torch.load(path, map_location=_device(model), weights_only=True), assign=assign)
    return model


def _assign(model: nn.Module, folder: str) -> nn.Module:
    return _torch_save_load(model, folder, assign=True)


def _safetensors_file(model: nn.Module, folder: str) -> nn.Module:
    path = os.path.join(folder, "model.safetensors")
    try:
        save_file(model.state_dict(), path)  # refuses tensors that share memory
    except RuntimeError as err:
        if "share memory" not in str(err):
            raise
        raise RuntimeError("save_file refuses tensors that share memory") from None  # its own text lists a set
    _overwrite(model)
    model.load_state_dict(load_file(path, device=str(_device(model))))
    return model


def _safetensors_model(model: nn.Module, folder: str) -> nn.Module:
    path = os.path.join(folder, "model.safetensors")
    save_model(model, path)  # drops the duplicate names of shared tensors
    _overwrite(model)
    load_model(model, path, device=str(_device(model)))
    return model


def _xtlab_checkpoint(model: nn.Module, folder: str) -> nn.Module:
    path = os.path.join(folder, "model.safetensors")
    save_checkpoint(model, path)
    _overwrite(model)
    load_checkpoint(model, path)
    return model


def _meta_to_empty(model: nn.Module, folder: str) -> nn.Module:
    device = _device(model)
    state = {key: value.detach().clone() for key, value in model.state_dict().items()}
    model.to("meta")
    model.to_empty(device=device)
    model.load_state_dict(state)
    return model


def _deepcopy(model: nn.Module, folder: str) -> nn.Module:
    return copy.deepcopy(model)


PATHS: dict[str, Callable[[nn.Module, str], nn.Module]] = {
    "torch.save/torch.load(weights_only)": _torch_save_load,
    "load_state_dict(assign=True)": _assign,
    "safetensors save_file/load_file": _safetensors_file,
    "safetensors save_model/load_model": _safetensors_model,
    "xtlab save_checkpoint/load_checkpoint": _xtlab_checkpoint,
    "meta -> to_empty -> load_state_dict": _meta_to_empty,
    "copy.deepcopy": _deepcopy,
}


def run_tying_paths(model: nn.Module, embedding: str, output: str) -> list[PathOutcome]:
    """Every path of :data:`PATHS` on ``model``, which is put back as it was after each one."""
    outcomes = []
    for name, path in PATHS.items():
        snapshot = ModelSnapshot(model)
        try:
            with tempfile.TemporaryDirectory() as folder:
                result = path(model, folder)
                tie = embedding_output_tie(result, embedding, output).value
                restored = snapshot.values_equal(result)
            outcomes.append(PathOutcome(name, tie, restored))
        except Exception as err:  # a path that raises is an outcome to report, not a crash of the audit
            outcomes.append(PathOutcome(name, "error", False, short_error(err)))
        finally:
            snapshot.restore()
    return outcomes
