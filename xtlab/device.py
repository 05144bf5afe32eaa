"""Pick the device a lab runs on: CUDA when present, else CPU.

What ``device=None`` means, everywhere in xtlab: the caller chose no device. A function that decides where work
runs (a lab's experiment, ``resolve_device``) then uses :func:`default_device`; a function that only places what
it is given (``xtlab.training.train``, ``xtlab.data.get_batch``) leaves it where it already is; a builder that must
run on the CPU to be exact (seeded tiny models, seq2seq batches drawn with a CPU generator) says so in its
docstring.
"""

from __future__ import annotations

import torch


def default_device() -> torch.device:
    """Return ``cuda`` when a CUDA GPU is available, else ``cpu``."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """Turn ``None`` (automatic), a string or a ``torch.device`` into a ``torch.device``.

    Raises:
        TypeError: ``device`` is not ``None``, a string or a ``torch.device``.
        ValueError: the device names CUDA but no GPU is available, or the string is not a device.
    """
    if device is None:
        return default_device()
    if not isinstance(device, (str, torch.device)):
        raise TypeError(f"device must be None, a str or a torch.device, but got {type(device).__name__}: {device!r}")
    try:
        resolved = torch.device(device)
    except RuntimeError as err:
        raise ValueError(f"device {device!r} is not a valid torch device (expected e.g. 'cpu' or 'cuda')") from err
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asks for CUDA, but no CUDA GPU is available here (use 'cpu' or None)")
    return resolved


def describe_device(device: str | torch.device | None = None) -> str:
    """One line naming the device, e.g. ``"cpu (2 threads)"`` or ``"cuda:0 (NVIDIA H100)"``."""
    dev = resolve_device(device)
    if dev.type == "cuda":
        index = dev.index if dev.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    return f"cpu ({torch.get_num_threads()} threads)"
