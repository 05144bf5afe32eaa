"""Safe checkpoints: safetensors files that store a tied weight once, written atomically, loaded only after
integrity, architecture, keys, shapes, dtypes and ties are verified (so a bad file leaves the model unchanged).
``.pt`` files load with ``weights_only=True`` only: a pickle that would run code is refused.

Every checkpoint xtlab writes, ``.safetensors`` or ``.pt``, carries xtlab's records (format, architecture, a sha256
of the content), and loading verifies them: a flipped bit is refused in both formats. A file without records
(written by ``torch.save`` or another library) loads only with ``allow_unrecorded=True``, which says what is not
checked; either way its tensors are compared with the model's by name, shape and dtype and every difference listed.

Every way a file can fail to load into a model raises one error type, :class:`CheckpointError`, naming the file.
"""

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

from xtlab._checks import check_bool, check_module, check_type
from xtlab.diagnostics.checkpoint_records import (
    ARCHITECTURE_KEY,
    CHECKSUM_KEY,
    FORMAT_KEY,
    FORMAT_VERSION,
    RecordError,
    architecture_differences,
    architecture_record,
    content_checksum,
    shown_differences,
    verify_records,
)

SAFETENSORS_SUFFIX = ".safetensors"
PICKLE_SUFFIXES = (".pt", ".pth", ".bin")
_ALIASES_KEY = "xtlab.aliases"  # metadata entry: {dropped key: key it aliases}
# in a .pt file the records ride as one uint8 tensor of JSON under this key (a .pt holds tensors, no metadata)
PT_RECORDS_KEY = "xtlab.records"
_NOT_CHECKED = "its content checksum (a damaged file could load) and its architecture record (module classes and " \
               "structural settings)"


class CheckpointError(ValueError):
    """A checkpoint file that cannot be loaded into the model: unreadable, truncated, corrupted, unsafe, or made
    for another architecture. The message names the file; the model is left unchanged."""


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
    check_type("path", path, (str, os.PathLike), "a str or os.PathLike")
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


def _meta_keys(state_dict: dict[str, torch.Tensor]) -> list[str]:
    return [key for key, tensor in state_dict.items() if tensor.device.type == "meta"]


def _shown_keys(keys: list[str], limit: int = 5) -> str:
    return str(keys[:limit]) + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def _naming(err: OSError, path: Path, doing: str) -> OSError:
    """The same kind of OSError, saying what failed on the user's path (not on a temporary file's name)."""
    message = f"could not {doing} checkpoint {str(path)!r}: {err.strerror or err}"
    return type(err)(err.errno, message) if err.errno is not None else type(err)(message)


def save_checkpoint(model: nn.Module, path: str | os.PathLike) -> Path:
    """Save ``model.state_dict()`` to a ``.safetensors`` (or ``.pt``) file, a tied tensor stored once, atomically.

    The file is written next to ``path`` under a temporary name and renamed over ``path`` only when complete,
    so a failed or interrupted save leaves any previous file intact. When ``path`` is a symbolic link, the file
    it points at is replaced and the link kept. The metadata records the architecture and a sha256 of the
    content, which :func:`load_checkpoint` verifies.

    Args:
        model: any ``nn.Module`` whose tensors hold values (not on the meta device).
        path: where to write; must end with ``.safetensors`` (or ``.pt``: a weights-only state_dict that also
            carries the records, under the key ``xtlab.records``); its folder must exist.

    Returns:
        The path written (as given).

    Raises:
        TypeError: bad ``model`` or ``path`` type.
        ValueError: wrong suffix, or a model with tensors on the meta device.
        OSError (FileNotFoundError, PermissionError, ...): the file could not be written; names ``path``.
    """
    check_module("model", model)
    path = _as_path(path, (SAFETENSORS_SUFFIX, PICKLE_SUFFIXES[0]))
    state_dict = model.state_dict()
    on_meta = _meta_keys(state_dict)
    if on_meta:
        raise ValueError(f"model has tensors on the meta device, which hold no values to save: {_shown_keys(on_meta)}; "
                         f"materialise it first (model.to_empty(device=...), then initialise or load it)")
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
    metadata = {_ALIASES_KEY: json.dumps(aliases), FORMAT_KEY: FORMAT_VERSION,
                ARCHITECTURE_KEY: json.dumps(architecture_record(model))}
    metadata[CHECKSUM_KEY] = content_checksum(metadata, tensors)

    target = Path(os.path.realpath(path))  # through a symbolic link: replace the file it points at, keep the link
    if not target.parent.is_dir():
        raise FileNotFoundError(f"could not save checkpoint {str(path)!r}: its folder {str(target.parent)!r} "
                                f"does not exist")
    temporary = None
    try:
        descriptor, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
        os.close(descriptor)
        if target.suffix == SAFETENSORS_SUFFIX:
            save_file(tensors, temporary, metadata=metadata)
        else:
            _save_pt(tensors, aliases, metadata, temporary)
        os.chmod(temporary, 0o644)  # mkstemp makes the file private; a checkpoint is an ordinary file
        with open(temporary, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except OSError as err:
        raise _naming(err, path, "save") from err
    finally:
        if temporary is not None and os.path.exists(temporary):
            os.remove(temporary)
    return path


def _save_pt(tensors: dict[str, torch.Tensor], aliases: dict[str, str], metadata: dict[str, str],
             temporary: str) -> None:
    """A .pt state_dict (ties kept as shared tensors) plus the records as a uint8 tensor of JSON."""
    content = dict(tensors)
    for alias, key in aliases.items():
        content[alias] = content[key]
    records = json.dumps(metadata, sort_keys=True).encode()
    content[PT_RECORDS_KEY] = torch.frombuffer(bytearray(records), dtype=torch.uint8)
    torch.save(content, temporary)


def _corrupted(path: Path, why: object) -> CheckpointError:
    return CheckpointError(f"checkpoint {str(path)!r} is truncated or corrupted and was not loaded: {why}")


def _read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict | None]:
    """The tensors (aliases filled in) and the architecture record (None in files written before records)."""
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            metadata = handle.metadata() or {}
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    except Exception as err:  # safetensors raises its own error types for a bad header or short data
        raise _corrupted(path, err) from err
    try:
        architecture = verify_records(metadata, tensors)
        aliases = json.loads(metadata.get(_ALIASES_KEY, "{}"))
    except (RecordError, ValueError) as err:
        raise _corrupted(path, err) from err
    if not isinstance(aliases, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in aliases.items()):
        raise _corrupted(path, f"its alias record must map key names to key names, but is {aliases!r:.120}")
    for alias, key in aliases.items():
        if key not in tensors:
            raise _corrupted(path, f"alias {alias!r} points at missing key {key!r}")
        tensors[alias] = tensors[key]
    return tensors, architecture


def _read_pt(path: Path) -> tuple[dict[str, torch.Tensor], dict | None]:
    """The tensors and the architecture record of a .pt file (None when it carries no xtlab records)."""
    loaded = _read_weights_only_pickle(path)
    records = loaded.pop(PT_RECORDS_KEY, None)
    if records is None:
        return loaded, None
    try:
        if records.dtype != torch.uint8 or records.dim() != 1:
            raise ValueError(f"its records are a {records.dtype} tensor of shape {tuple(records.shape)}")
        metadata = json.loads(bytes(records.tolist()).decode())
        if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
            raise ValueError("its records are not a dict of strings")
        if _ALIASES_KEY not in metadata:
            raise RecordError(f"its records lack {_ALIASES_KEY!r}")
        aliases = json.loads(metadata[_ALIASES_KEY])
        stored = {key: tensor for key, tensor in loaded.items() if key not in aliases}
        architecture = verify_records(metadata, stored)
        if architecture is None:
            raise RecordError("its records hold no format, architecture or checksum")
        for alias, key in aliases.items():
            if alias not in loaded or key not in loaded or not torch.equal(loaded[alias], loaded[key]):
                raise RecordError(f"alias {alias!r} does not hold the same tensor as {key!r}")
    except (RecordError, ValueError, UnicodeDecodeError, TypeError) as err:
        raise _corrupted(path, err) from err
    return loaded, architecture


def _read_weights_only_pickle(path: Path) -> dict[str, torch.Tensor]:
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if "weights only" not in str(err).lower():  # not a refused object: the bytes themselves are broken
            raise _corrupted(path, str(err).splitlines()[0] if str(err) else type(err).__name__) from err
        raise CheckpointError(
            f"refused to load {str(path)!r}: it is not a weights-only checkpoint (unpickling it would build "
            f"arbitrary objects or run code); load only files you trust, or re-save them as .safetensors. "
            f"Detail: {str(err).splitlines()[0]}"
        ) from err
    except Exception as err:  # a damaged zip or pickle fails in many ways (RuntimeError, KeyError, IndexError, ...)
        raise _corrupted(path, f"{type(err).__name__}: {err}") from err
    if not isinstance(loaded, dict):
        raise CheckpointError(f"checkpoint {str(path)!r} holds a {type(loaded).__name__}, not a state_dict of tensors")
    odd = [f"{key!r}: {type(value).__name__}" for key, value in loaded.items()
           if not (isinstance(key, str) and isinstance(value, torch.Tensor))]
    if odd:
        raise CheckpointError(f"checkpoint {str(path)!r} holds a dict, not a state_dict of tensors (str keys, tensor "
                              f"values): {_shown_keys(odd)}")
    odd = [key for key, value in loaded.items() if value.layout != torch.strided or value.device.type == "meta"]
    if odd:
        raise CheckpointError(f"checkpoint {str(path)!r} holds tensors that are sparse or hold no values (meta) "
                              f"under {_shown_keys(odd)}; a state_dict holds dense tensors")
    return loaded


def _check_architecture(path: Path, recorded: dict, model: nn.Module) -> None:
    differences = architecture_differences(recorded, model)
    if differences:
        raise CheckpointError(
            f"checkpoint {str(path)!r} was saved from a different architecture than this {type(model).__name__}, "
            f"nothing was loaded; differences:\n{shown_differences(differences)}\n"
            f"(pass check_architecture=False to load by keys, shapes and dtypes only)"
        )


def _describe(tensor: torch.Tensor) -> str:
    return f"{tuple(tensor.shape)} {str(tensor.dtype).removeprefix('torch.')}"


def tensor_differences(expected: dict[str, torch.Tensor], loaded: dict[str, torch.Tensor]) -> list[str]:
    """One line per difference between a file's tensors and the model's: names, shapes, dtypes."""
    lines = [f"missing in the file: {key} (model {_describe(expected[key])})"
             for key in expected if key not in loaded]
    lines += [f"not in the model: {key} (file {_describe(loaded[key])})" for key in loaded if key not in expected]
    for key, tensor in expected.items():
        if key in loaded and loaded[key].shape != tensor.shape:
            lines.append(f"shape of {key}: file {tuple(loaded[key].shape)} vs model {tuple(tensor.shape)}")
        # copy_ would cast silently: float64 rounded, int64 turned into floats, complex losing its imaginary part
        if key in loaded and loaded[key].dtype != tensor.dtype:
            lines.append(f"dtype of {key}: file {loaded[key].dtype} vs model {tensor.dtype}")
    return lines


def _check_tensors(path: Path, expected: dict[str, torch.Tensor], loaded: dict[str, torch.Tensor]) -> None:
    differences = tensor_differences(expected, loaded)
    if differences:
        raise CheckpointError(
            f"checkpoint {str(path)!r} does not match the model's tensors (names, shapes, dtypes), nothing was "
            f"loaded; {len(differences)} difference(s):\n{shown_differences(differences)}\n"
            f"(for other dtypes, convert the model with model.to(dtype) first if that is what you want)"
        )


def load_checkpoint(model: nn.Module, path: str | os.PathLike, *, check_architecture: bool = True,
                    allow_unrecorded: bool = False) -> LoadReport:
    """Load a checkpoint into ``model`` in place, after verifying integrity, architecture, keys, shapes, dtypes
    and ties.

    Nothing in the model changes unless every check passes. Tensors the model ties (one memory under several
    keys) must hold equal values in the checkpoint; they are filled in place, so the ties survive. Files that
    keys) must hold equal values in the checkpoint; they are filled in place, so the ties survive. A file without
    xtlab's records (``torch.save``, another library, an xtlab file from before the records) is refused unless
    ``allow_unrecorded=True``: then neither its checksum nor its architecture is checked, only names, shapes,
    dtypes and ties.

    Args:
        model: any ``nn.Module`` whose tensors hold memory (not on the meta device).
        path: a ``.safetensors`` file (as :func:`save_checkpoint` writes), or a ``.pt``/``.pth``/``.bin`` file
            of a state_dict, read with ``torch.load(weights_only=True)``.
        check_architecture: compare the recorded module classes and structural settings with the model's
            (False: load by keys, shapes and dtypes only, e.g. into a compatible but different class).
        allow_unrecorded: load a file that carries no xtlab records, knowing that its content checksum and its
            architecture record are not checked.

    Raises:
        TypeError: bad ``model``, ``path`` or ``check_architecture`` type.
        ValueError: ``path`` has an unknown suffix.
        FileNotFoundError: no file at ``path``.
        CheckpointError (a ValueError): the model is on the meta device; the file is unreadable, truncated or
            corrupted (checksum), or a pickle that is not weights-only; another architecture; missing,
            unexpected or mismatched keys, shapes or dtypes; tied keys holding different values.
    """
    check_module("model", model)
    check_bool("check_architecture", check_architecture)
    check_bool("allow_unrecorded", allow_unrecorded)
    path = _as_path(path, (SAFETENSORS_SUFFIX, *PICKLE_SUFFIXES))
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint file at {str(path)!r}")
    expected = model.state_dict()
    on_meta = _meta_keys(expected)
    if on_meta:
        raise CheckpointError(
            f"cannot load checkpoint {str(path)!r} into a model on the meta device: {_shown_keys(on_meta)} hold no "
            f"memory to fill, so nothing would be loaded; call model.to_empty(device=...) first"
        )
    if path.suffix == SAFETENSORS_SUFFIX:
        loaded, architecture = _read_safetensors(path)
    else:
        loaded, architecture = _read_pt(path)
    if architecture is not None and check_architecture:
        _check_architecture(path, architecture, model)
    _check_tensors(path, expected, loaded)

    tied_keys = _alias_groups(expected)
    for keys in tied_keys:
        if not all(torch.equal(loaded[keys[0]], loaded[key]) for key in keys[1:]):
            raise CheckpointError(
                f"checkpoint {str(path)!r} holds different values for keys {keys}, which are one tied tensor in "
                f"the model; loading would silently keep only the last one. Nothing was loaded."
            )
    if architecture is None and not allow_unrecorded:
        raise CheckpointError(
            f"checkpoint {str(path)!r} carries no xtlab records, so {_NOT_CHECKED} cannot be checked; nothing was "
            f"loaded. Its tensors match the model by names, shapes and dtypes. Pass allow_unrecorded=True to load "
            f"it without those two checks, or re-save it with save_checkpoint"
        )
    tied_in_model = {key for keys in tied_keys for key in keys}
    stored_once = _alias_groups(loaded)
    untied_in_model = tuple(tuple(keys) for keys in stored_once if not set(keys) <= tied_in_model)

    with torch.no_grad():
        for key, target in expected.items():
            target.copy_(loaded[key])
    return LoadReport(len(expected), tuple(tuple(keys) for keys in tied_keys), untied_in_model)
