"""Argument checks for every public boundary of xtlab: model, diagnostics and labs.

One style everywhere: ``check_<what>(name, value, ...)`` returns the value when it is acceptable and raises
``TypeError`` for a wrong type or ``ValueError`` for a wrong value, with a message that names the argument,
the value given and what was expected.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from torch import Tensor, nn


def _shown(value: Any) -> str:
    """A short description of ``value`` for an error message: its type and a clipped repr."""
    text = repr(value)
    if len(text) > 80:
        text = text[:77] + "..."
    return f"{type(value).__name__}: {text}"


def check_type(name: str, value: Any, types: type | tuple[type, ...], expected: str) -> Any:
    """``value`` when it is an instance of ``types``; ``expected`` says in words what was wanted."""
    if not isinstance(value, types):
        raise TypeError(f"{name} must be {expected}, but got {_shown(value)}")
    return value


def check_bool(name: str, value: Any) -> bool:
    """A real ``bool``: a string such as ``"False"`` or the int 2 would otherwise switch a flag on silently."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, but got {_shown(value)}")
    return value


def check_str(name: str, value: Any) -> str:
    return check_type(name, value, str, "a str")


def check_int(name: str, value: Any, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """An int (bools refused) within ``[minimum, maximum]``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, but got {_shown(value)}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, but got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, but got {value}")
    return value


def check_number(
    name: str,
    value: Any,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    finite: bool = True,
) -> float:
    """A real number (bools refused) as a float, finite unless ``finite=False``, within ``[minimum, maximum]``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, but got {_shown(value)}")
    value = float(value)
    if math.isnan(value) or (finite and math.isinf(value)):
        raise ValueError(f"{name} must be a finite number, but got {value}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, but got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, but got {value}")
    return value


def check_probability(name: str, value: Any, *, allow_one: bool = False) -> float:
    """A probability in ``[0, 1)`` (``[0, 1]`` with ``allow_one``)."""
    value = check_number(name, value)
    upper_ok = value <= 1.0 if allow_one else value < 1.0
    if not (value >= 0.0 and upper_ok):
        interval = "[0, 1]" if allow_one else "[0, 1)"
        raise ValueError(f"{name} must be in {interval}, but got {value}")
    return value


def check_choice(name: str, value: Any, choices: Sequence[Any]) -> Any:
    """One of ``choices``."""
    if value not in tuple(choices):
        raise ValueError(f"{name} must be one of {tuple(choices)}, but got {value!r}")
    return value


def check_callable(name: str, value: Any) -> Callable[..., Any]:
    if not callable(value):
        raise TypeError(f"{name} must be callable, but got {_shown(value)}")
    return value


def check_module(name: str, value: Any) -> nn.Module:
    return check_type(name, value, nn.Module, "a torch.nn.Module")


_DTYPE_KINDS: dict[str, Callable[[torch.dtype], bool]] = {
    "integer": lambda dtype: not dtype.is_floating_point and not dtype.is_complex and dtype != torch.bool,
    "floating": lambda dtype: dtype.is_floating_point,
    "bool": lambda dtype: dtype == torch.bool,
}


def check_tensor(name: str, value: Any, *, kind: str | None = None, ndim: int | None = None) -> Tensor:
    """A tensor, optionally of a dtype ``kind`` (``"integer"``, ``"floating"``, ``"bool"``) and ``ndim``."""
    if not isinstance(value, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, but got {_shown(value)}")
    if kind is not None and not _DTYPE_KINDS[kind](value.dtype):
        raise TypeError(f"{name} must be a {kind} tensor, but got dtype {value.dtype}")
    if ndim is not None and value.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, but got shape {tuple(value.shape)}")
    return value


def check_bool_mask(name: str, mask: Any, shape: tuple[int, ...]) -> Tensor:
    """A boolean mask of exactly ``shape`` (True = may be attended)."""
    check_tensor(name, mask, kind="bool")
    if tuple(mask.shape) != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, but got {tuple(mask.shape)}")
    return mask


def shown(value: Any) -> str:
    """The short ``type: repr`` description every check message uses, for domain-specific messages."""
    return _shown(value)


def check_optional(name: str, value: Any, check: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``None``, or ``value`` passed through ``check(name, value, *args, **kwargs)``."""
    return None if value is None else check(name, value, *args, **kwargs)


def check_strings(name: str, value: Any) -> tuple[str, ...]:
    """A collection of str (a lone str is refused: it would be read as a collection of characters)."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise TypeError(f"{name} must be a collection of str, but got {_shown(value)}")
    items = tuple(value)
    for index, item in enumerate(items):
        if not isinstance(item, str):
            raise TypeError(f"{name}[{index}] must be a str, but got {_shown(item)}")
    return items


def check_dtype(name: str, value: Tensor, dtypes: torch.dtype | tuple[torch.dtype, ...], why: str = "") -> Tensor:
    """A tensor of one of ``dtypes``; ``why`` (e.g. ``" (the model's dtype)"``) says where they come from."""
    dtypes = dtypes if isinstance(dtypes, tuple) else (dtypes,)
    if value.dtype not in dtypes:
        wanted = " or ".join(str(dtype) for dtype in dtypes)
        raise TypeError(f"{name} must have dtype {wanted}{why}, but got dtype {value.dtype}")
    return value


def check_device(name: str, value: Tensor, device: torch.device | str, why: str = " (the model's device)") -> Tensor:
    """A tensor on ``device``; a meta tensor holds no values, so it is refused unless ``device`` is meta too."""
    device = torch.device(device)
    if value.device != device:
        raise ValueError(f"{name} must be on device {device}{why}, but got a tensor on {value.device}")
    return value


def check_last_dim(name: str, value: Any, size: int, *, kind: str | None = "floating") -> Tensor:
    """A tensor (of ``kind``) with at least one dimension whose last dimension is ``size``."""
    check_tensor(name, value, kind=kind)
    if value.ndim == 0 or value.shape[-1] != size:
        raise ValueError(f"{name} must have shape (..., {size}), but got shape {tuple(value.shape)}")
    return value
