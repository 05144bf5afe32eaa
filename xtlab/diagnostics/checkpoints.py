"""Safe checkpoints: safetensors files that store a tied weight once, written atomically, loaded only after
keys, shapes and ties are verified (so a bad file leaves the model unchanged). ``.pt`` files load with
``weights_only=True`` only: a pickle that would run code is refused."""

from __future__ import annotations

import json
import os
import pickle
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
from safetensors import safe_open
from safetensors.torch import save_file

from xtlab.diagnostics.checks import require_module

SAFETENSORS_SUFFIX = ".safetensors"
PICKLE_SUFFIXES = (".pt", ".pth", ".bin")
_ALIASES_KEY = "xtlab.aliases"  # metadata entry: {dropped key: key it aliases}


@dataclass(frozen=True)
class LoadReport:
    """What :func:`load_checkpoint` loaded.

    Attributes:
        keys: number of state_dict keys filled.
        tied_keys: groups of keys that are one tensor in the model; the checkpoint agreed on each group.
        untied_in_model: groups of keys stored once in the checkpoint (a tie when saved) that the model
            holds as separate tensors; they were loaded with equal values, but they will drift apart in training.
    """

    keys: int
    tied_keys: tuple[tuple[str, ...], ...]
    untied_in_model: tuple[tuple[str, ...], ...]


def _as_path(path: str | os.PathLike, suffixes: tuple[str, ...]) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, but got {type(path).__name__}: {path!r:.80}")
    path = Path(path)
    if path.suffix not in suffixes:
        raise ValueError(f"checkpoint path {str(path)!r} must end with one of {suffixes}")
    return path


def _view_key(tensor: torch.Tensor) -> tuple:
    return (tensor.untyped_storage().data_ptr(), tensor.storage_offset(), tuple(tensor.shape), tensor.stride(),
            tensor.dtype, str(tensor.device))


def _alias_groups(state_dict: dict[str, torch.Tensor]) -> list[list[str]]:
    """Groups of keys that are exactly the same view of the same memory (a tie), in state_dict order."""
    groups: dict[tuple, list[str]] = {}
    for key, tensor in state_dict.items():
        if tensor.device.type != "meta":
            groups.setdefault(_view_key(tensor), []).append(key)
    return [keys for keys in groups.values() if len(keys) > 1]


def save_checkpoint(model: nn.Module, path: str | os.PathLike) -> Path:
    """Save ``model.state_dict()`` to a ``.safetensors`` file, a tied tensor stored once, atomically.

    The file is written next to ``path`` under a temporary name and renamed over ``path`` only when complete,
    so a failed or interrupted save leaves any previous file intact.

    Args:
        model: any ``nn.Module``.
        path: where to write; must end with ``.safetensors``.

    Returns:
        The path written.
    """
    require_module(model)
    path = _as_path(path, (SAFETENSORS_SUFFIX,))
    state_dict = model.state_dict()
    aliases = {alias: keys[0] for keys in _alias_groups(state_dict) for alias in keys[1:]}
    tensors, seen_storages = {}, set()
    for key, tensor in state_dict.items():
        if key in aliases:
            continue
        tensor = tensor.detach().to("cpu")
        storage = tensor.untyped_storage().data_ptr()
        # a partial view of memory another tensor also uses: store its own copy (safetensors refuses shared memory)
        tensor = tensor.clone().contiguous() if storage in seen_storages else tensor.contiguous()
        seen_storages.add(storage)
        tensors[key] = tensor
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    os.close(descriptor)
    try:
        save_file(tensors, temporary, metadata={_ALIASES_KEY: json.dumps(aliases)})
        os.chmod(temporary, 0o644)  # mkstemp makes the file private; a checkpoint is an ordinary file
        with open(temporary, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    return path


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            metadata = handle.metadata() or {}
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
        aliases = json.loads(metadata.get(_ALIASES_KEY, "{}"))
    except Exception as err:  # safetensors raises its own error types for a bad header or short data
        raise ValueError(f"checkpoint {str(path)!r} is truncated or corrupted and was not loaded: {err}") from err
    for alias, key in aliases.items():
        if key not in tensors:
            raise ValueError(f"checkpoint {str(path)!r} is corrupted: alias {alias!r} points at missing key {key!r}")
        tensors[alias] = tensors[key]
    return tensors


def _read_weights_only_pickle(path: Path) -> dict[str, torch.Tensor]:
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise ValueError(
            f"refused to load {str(path)!r}: it is not a weights-only checkpoint (unpickling it would build "
            f"arbitrary objects or run code); load only files you trust, or re-save them as .safetensors. "
            f"Detail: {str(err).splitlines()[0]}"
        ) from err
    except (RuntimeError, EOFError, OSError) as err:
        raise ValueError(f"checkpoint {str(path)!r} is truncated or corrupted and was not loaded: {err}") from err
    if not isinstance(loaded, dict) or not all(
        isinstance(key, str) and isinstance(value, torch.Tensor) for key, value in loaded.items()
    ):
        raise ValueError(f"checkpoint {str(path)!r} holds a {type(loaded).__name__}, not a state_dict of tensors")
    return loaded


def _check_keys_and_shapes(path: Path, expected: dict[str, torch.Tensor], loaded: dict[str, torch.Tensor]) -> None:
    missing = sorted(set(expected) - set(loaded))
    unexpected = sorted(set(loaded) - set(expected))
    mismatched = [
        f"{key}: checkpoint {tuple(loaded[key].shape)} vs model {tuple(expected[key].shape)}"
        for key in expected
        if key in loaded and loaded[key].shape != expected[key].shape
    ]
    if missing or unexpected or mismatched:
        raise ValueError(
            f"checkpoint {str(path)!r} does not match the model, nothing was loaded:\n"
            f"  missing keys: {missing}\n  unexpected keys: {unexpected}\n  mismatched shapes: {mismatched}"
        )


def load_checkpoint(model: nn.Module, path: str | os.PathLike) -> LoadReport:
    """Load a checkpoint into ``model`` in place, after verifying keys, shapes and ties.

    Nothing in the model changes unless every check passes. Tensors the model ties (one memory under several
    keys) must hold equal values in the checkpoint; they are filled in place, so the ties survive.

    Args:
        model: any ``nn.Module``.
        path: a ``.safetensors`` file (as :func:`save_checkpoint` writes), or a ``.pt``/``.pth``/``.bin`` file
            of a state_dict, read with ``torch.load(weights_only=True)``.

    Raises:
        TypeError: bad ``model`` or ``path`` type.
        FileNotFoundError: no file at ``path``.
        ValueError: unknown suffix; truncated/corrupted file; a pickle that is not weights-only; missing,
            unexpected or mismatched keys; tied keys holding different values.
    """
    require_module(model)
    path = _as_path(path, (SAFETENSORS_SUFFIX, *PICKLE_SUFFIXES))
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint file at {str(path)!r}")
    if path.suffix == SAFETENSORS_SUFFIX:
        loaded = _read_safetensors(path)
    else:
        loaded = _read_weights_only_pickle(path)
    expected = model.state_dict()
    _check_keys_and_shapes(path, expected, loaded)

    tied_keys = _alias_groups(expected)
    for keys in tied_keys:
        if not all(torch.equal(loaded[keys[0]], loaded[key]) for key in keys[1:]):
            raise ValueError(
                f"checkpoint {str(path)!r} holds different values for keys {keys}, which are one tied tensor in "
                f"the model; loading would silently keep only the last one. Nothing was loaded."
            )
    tied_in_model = {key for keys in tied_keys for key in keys}
    stored_once = _alias_groups(loaded)
    untied_in_model = tuple(tuple(keys) for keys in stored_once if not set(keys) <= tied_in_model)

    with torch.no_grad():
        for key, target in expected.items():
            target.copy_(loaded[key])
    return LoadReport(len(expected), tuple(tuple(keys) for keys in tied_keys), untied_in_model)
