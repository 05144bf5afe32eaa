"""What a checkpoint records about itself, in the safetensors metadata, so that a load can verify it: the
architecture it came from (module classes and a few structural settings) and a sha256 of its content.

Metadata keys (all strings, as safetensors requires):
    ``xtlab.format``: ``"2"`` for files written with these records (files without them still load).
    ``xtlab.architecture``: JSON ``{"model": class name, "modules": {path: class name},
    "config": {"path.attribute": value}}``.
    ``xtlab.sha256``: hex sha256 over the other metadata entries and every stored tensor's name, dtype, shape
    and bytes; a flipped bit anywhere in them changes it.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import torch
import torch.nn as nn

FORMAT_KEY = "xtlab.format"
FORMAT_VERSION = "2"
ARCHITECTURE_KEY = "xtlab.architecture"
CHECKSUM_KEY = "xtlab.sha256"
RECORD_KEYS = (FORMAT_KEY, ARCHITECTURE_KEY, CHECKSUM_KEY)

# settings that change what the same weights compute, so a checkpoint's must match the model's;
# runtime switches (dropout, memory lengths, the labs' teaching bugs) are deliberately left out
CONFIG_ATTRIBUTES = ("causal", "heads", "dim_head", "unit_offset", "theta")
_SHOWN_DIFFERENCES = 12


class RecordError(ValueError):
    """A record in the metadata is malformed (the caller names the file)."""


def architecture_record(model: nn.Module) -> dict[str, Any]:
    """The model's class, every submodule's class by path, and its structural settings.

    Args:
        model: any ``nn.Module``.
    """
    modules, config = {}, {}
    for path, module in model.named_modules():
        modules[path] = type(module).__name__
        for attribute in CONFIG_ATTRIBUTES:
            try:
                value = getattr(module, attribute, None)
            except Exception:  # a property that fails on this module tells us nothing about its structure
                continue
            if isinstance(value, (bool, int, float, str)):
                config[f"{path}.{attribute}" if path else attribute] = value
    return {"model": type(model).__name__, "modules": modules, "config": config}


def parse_architecture(text: str) -> dict[str, Any]:
    """The record :func:`architecture_record` wrote, validated; raises :class:`RecordError` when malformed."""
    try:
        record = json.loads(text)
    except ValueError as err:
        raise RecordError(f"its architecture record is not valid JSON: {err}") from err
    if not (
        isinstance(record, dict)
        and isinstance(record.get("model"), str)
        and _is_str_dict(record.get("modules"), (str,))
        and _is_str_dict(record.get("config"), (bool, int, float, str))
    ):
        raise RecordError(f"its architecture record is malformed: {text[:120]!r}")
    return record


def _is_str_dict(value: Any, value_types: tuple[type, ...]) -> bool:
    return isinstance(value, dict) and all(
        isinstance(key, str) and isinstance(item, value_types) for key, item in value.items()
    )


def architecture_differences(recorded: dict[str, Any], model: nn.Module) -> list[str]:
    """Where ``model`` differs from the ``recorded`` architecture, one line per difference.

    A module matches when the recorded class is its class or one of its base classes (a subclass may load
    its parent's checkpoint); settings must be equal.
    """
    current = architecture_record(model)
    class_names = {path: {cls.__name__ for cls in type(module).__mro__} for path, module in model.named_modules()}
    differences = []
    saved_modules, model_modules = recorded["modules"], current["modules"]
    for path in sorted(set(saved_modules) | set(model_modules)):
        label = path or "(the model itself)"
        saved, now = saved_modules.get(path), model_modules.get(path)
        if saved is None:
            differences.append(f"{label}: the model has a {now}, the checkpoint has nothing there")
        elif now is None:
            differences.append(f"{label}: the checkpoint has a {saved}, the model has nothing there")
        elif saved not in class_names[path]:
            differences.append(f"{label}: checkpoint {saved}, model {now}")
    saved_config, model_config = recorded["config"], current["config"]
    for key in sorted(set(saved_config) | set(model_config)):
        if saved_config.get(key) != model_config.get(key):
            differences.append(f"{key}: checkpoint {saved_config.get(key)!r}, model {model_config.get(key)!r}")
    return differences


def shown_differences(differences: list[str]) -> str:
    """The first differences, one per line, and how many more there are."""
    lines = [f"  {line}" for line in differences[:_SHOWN_DIFFERENCES]]
    if len(differences) > _SHOWN_DIFFERENCES:
        lines.append(f"  ... and {len(differences) - _SHOWN_DIFFERENCES} more")
    return "\n".join(lines)


def content_checksum(metadata: dict[str, str], tensors: dict[str, torch.Tensor]) -> str:
    """sha256 over ``metadata`` (without the checksum entry) and each tensor's name, dtype, shape and bytes."""
    digest = hashlib.sha256()
    digest.update(json.dumps({k: v for k, v in metadata.items() if k != CHECKSUM_KEY}, sort_keys=True).encode())
    for key in sorted(tensors):
        tensor = tensors[key]
        digest.update(json.dumps([key, str(tensor.dtype), list(tensor.shape)]).encode())
        if tensor.numel() > 0:
            digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def verify_records(metadata: dict[str, str], tensors: dict[str, torch.Tensor]) -> dict[str, Any] | None:
    """Check the records of a file that has them; return its architecture record (None for an older file).

    Raises:
        RecordError: a record is missing (the others are present), malformed, or the checksum differs.
    """
    present = [key for key in RECORD_KEYS if key in metadata]
    if not present:
        return None
    missing = [key for key in RECORD_KEYS if key not in metadata]
    if missing:
        raise RecordError(f"its metadata has {present} but lacks {missing}")
    if metadata[FORMAT_KEY] != FORMAT_VERSION:
        raise RecordError(f"its format is {metadata[FORMAT_KEY]!r}, but this xtlab reads format {FORMAT_VERSION!r}")
    computed = content_checksum(metadata, tensors)
    if metadata[CHECKSUM_KEY] != computed:
        raise RecordError(f"its content checksum does not match (stored sha256 {metadata[CHECKSUM_KEY][:16]!r}..., "
                          f"computed {computed[:16]!r}...): the file changed after it was written")
    return parse_architecture(metadata[ARCHITECTURE_KEY])
