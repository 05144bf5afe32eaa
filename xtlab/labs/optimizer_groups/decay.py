"""Weight decay on a norm gain stored directly vs as an offset from 1, with no gradient at all.

AdamW's decoupled decay multiplies every parameter of a decayed group by ``1 - lr * weight_decay`` per step;
with a zero gradient its Adam update is exactly 0, so decay alone moves the parameter: after ``t`` steps the
stored value is ``stored_0 * (1 - lr * wd) ** t``. Stored directly, the gain itself goes to 0; stored as an
offset (``gain = 1 + stored``), the gain goes to 1. A parameter whose ``.grad`` is None is skipped entirely.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from xtlab._checks import check_int, check_number

STORAGES = ("stored directly", "stored as offset from 1")


def _check_settings(start_gain: float, lr: float, weight_decay: float, steps: int) -> None:
    check_number("start_gain", start_gain)
    check_number("lr", lr, minimum=0.0)
    check_number("weight_decay", weight_decay, minimum=0.0)
    check_int("steps", steps, minimum=1, maximum=100_000)
    if lr * weight_decay >= 1:
        raise ValueError(f"lr * weight_decay must be < 1 (each step multiplies by 1 - lr * wd), but got "
                         f"{lr} * {weight_decay} = {lr * weight_decay:g}")


@dataclass(frozen=True)
class GainDecay:
    """The effective gain after each step, per storage.

    Attributes:
        steps: 0 .. number of steps.
        gains: storage -> array (steps + 1,) of effective gains (what multiplies the normalised input).
        start_gain, lr, weight_decay: the settings.
        source: "torch AdamW" (measured) or "closed form".
    """

    steps: np.ndarray
    gains: dict[str, np.ndarray]
    start_gain: float
    lr: float
    weight_decay: float
    source: str

    def final(self, storage: str) -> float:
        return float(self.gains[storage][-1])


def gain_decay_closed_form(start_gain: float = 1.5, lr: float = 1e-2, weight_decay: float = 0.1,
                           steps: int = 3000) -> GainDecay:
    """``stored_t = stored_0 * (1 - lr * wd) ** t`` for both storages (instant: what the panel draws)."""
    _check_settings(start_gain, lr, weight_decay, steps)
    factor = (1.0 - lr * weight_decay) ** np.arange(steps + 1)
    gains = {STORAGES[0]: start_gain * factor, STORAGES[1]: 1.0 + (start_gain - 1.0) * factor}
    return GainDecay(np.arange(steps + 1), gains, float(start_gain), float(lr), float(weight_decay), "closed form")


def gain_decay_adamw(start_gain: float = 1.5, lr: float = 1e-2, weight_decay: float = 0.1, steps: int = 3000,
                     grad: str = "zeros") -> GainDecay:
    """Run torch's AdamW for ``steps`` on two 32-wide gains that start at effective ``start_gain``.

    Args:
        grad: ``"zeros"`` (a zero gradient every step: decay alone acts) or ``"none"`` (``.grad`` stays None:
            AdamW skips the parameter, decay included).
    """
    _check_settings(start_gain, lr, weight_decay, steps)
    if grad not in ("zeros", "none"):
        raise ValueError(f"grad must be 'zeros' or 'none', but got {grad!r}")
    stored = {STORAGES[0]: torch.nn.Parameter(torch.full((32,), float(start_gain))),
              STORAGES[1]: torch.nn.Parameter(torch.full((32,), float(start_gain) - 1.0))}
    offset = {STORAGES[0]: 0.0, STORAGES[1]: 1.0}
    optimizer = torch.optim.AdamW(list(stored.values()), lr=lr, weight_decay=weight_decay, foreach=False)
    history = {name: [start_gain] for name in stored}
    for _ in range(steps):
        for parameter in stored.values():
            parameter.grad = torch.zeros_like(parameter) if grad == "zeros" else None
        optimizer.step()
        for name, parameter in stored.items():
            history[name].append(float(parameter.detach().mean()) + offset[name])
    gains = {name: np.asarray(values) for name, values in history.items()}
    return GainDecay(np.arange(steps + 1), gains, float(start_gain), float(lr), float(weight_decay), "torch AdamW")


def gain_decay_adam_l2(start_gain: float = 1.5, lr: float = 1e-2, weight_decay: float = 0.1,
                       steps: int = 3000) -> np.ndarray:
    """The same zero-gradient run with ``torch.optim.Adam(weight_decay=...)``, the coupled (L2) decay AdamW
    replaces: the decay term joins the gradient and Adam normalises it, so a gain stored directly moves by about
    ``lr`` per step whatever ``weight_decay`` is. Returns the gain after each step, (steps + 1,)."""
    _check_settings(start_gain, lr, weight_decay, steps)
    gain = torch.nn.Parameter(torch.full((32,), float(start_gain)))
    optimizer = torch.optim.Adam([gain], lr=lr, weight_decay=weight_decay, foreach=False)
    history = [float(start_gain)]
    for _ in range(steps):
        gain.grad = torch.zeros_like(gain)
        optimizer.step()
        history.append(float(gain.detach().mean()))
    return np.asarray(history)
