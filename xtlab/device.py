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
        ValueError: the string is not a device; the device names CUDA but no GPU is available, or a CUDA index
            this machine does not have; it names MPS or XPU and that backend is not available here; it names any
            other accelerator type (xtlab runs on cpu, cuda, mps or xpu).
    """
    if device is None:
        return default_device()
    if not isinstance(device, (str, torch.device)):
        raise TypeError(f"device must be None, a str or a torch.device, but got {type(device).__name__}: {device!r}")
    try:
        resolved = torch.device(device)
    except RuntimeError as err:
        raise ValueError(f"device {device!r} is not a valid torch device (expected e.g. 'cpu' or 'cuda')") from err
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r} asks for CUDA, but no CUDA GPU is available here (use 'cpu' or None)")
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ValueError(f"device {device!r} asks for CUDA GPU {resolved.index}, but this machine has "
                             f"{torch.cuda.device_count()} (indices 0..{torch.cuda.device_count() - 1})")
    elif resolved.type in _OTHER_ACCELERATORS:
        if not _OTHER_ACCELERATORS[resolved.type]():
            raise ValueError(f"device {device!r} asks for {resolved.type.upper()}, but it is not available here "
                             f"(use 'cpu' or None)")
    elif resolved.type != "cpu":
        raise ValueError(f"device {device!r} is of type {resolved.type!r}; xtlab runs on 'cpu', 'cuda', 'mps' or "
                         f"'xpu' (or None: the default device)")
    return resolved


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def _xpu_available() -> bool:
    xpu = getattr(torch, "xpu", None)
    return bool(xpu is not None and xpu.is_available())


_OTHER_ACCELERATORS = {"mps": _mps_available, "xpu": _xpu_available}


def describe_device(device: str | torch.device | None = None) -> str:
    """One line naming the device, e.g. ``"cpu (2 threads)"`` or ``"cuda:0 (NVIDIA H100)"``."""
    dev = resolve_device(device)
    if dev.type == "cuda":
        index = dev.index if dev.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    return f"cpu ({torch.get_num_threads()} threads)"
