"""Put a model back exactly as it was: parameter and buffer objects, their memory and values, gradients,
train/eval flags; and the global random state (Python, NumPy, torch) around an audit."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn


class ModelSnapshot:
    """Everything a check may change in ``model``; :meth:`restore` puts it back.

    Ties survive a restore: the same Parameter objects return to the same modules, each pointing at its
    original memory again (so two Parameters that shared memory share it again), with the original values.
    """

    def __init__(self, model: nn.Module):
        self._modules = [(module, dict(module._parameters), dict(module._buffers), dict(module._modules),
                          module.training) for module in model.modules()]
        self._tensors: dict[int, tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]] = {}
        for _, parameters, buffers, _, _ in self._modules:
            for tensor in (*parameters.values(), *buffers.values()):
                if tensor is not None and id(tensor) not in self._tensors:
                    self._tensors[id(tensor)] = (tensor, tensor.data, tensor.detach().clone(), tensor.grad)
        self._state = {key: value.detach().clone() for key, value in model.state_dict().items()}

    def restore(self) -> None:
        for module, parameters, buffers, children, training in self._modules:
            module._parameters.clear()
            module._parameters.update(parameters)
            module._buffers.clear()
            module._buffers.update(buffers)
            module._modules.clear()
            module._modules.update(children)
            module.training = training
        with torch.no_grad():
            for tensor, data, values, grad in self._tensors.values():
                tensor.data = data
                data.copy_(values)
                tensor.grad = grad

    def values_equal(self, model: nn.Module) -> bool:
        """Whether ``model``'s state_dict has the snapshot's keys, shapes, dtypes and values."""
        current = model.state_dict()
        return current.keys() == self._state.keys() and all(
            current[key].shape == values.shape and current[key].dtype == values.dtype
            and torch.equal(current[key].detach().to(values.device), values) for key, values in self._state.items())


@contextmanager
def global_random_state_kept() -> Iterator[None]:
    """Python's, NumPy's and torch's (CPU and CUDA) global random state and grad mode, put back afterwards."""
    python, numpy_state, cpu = random.getstate(), np.random.get_state(), torch.get_rng_state()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    grad = torch.is_grad_enabled()
    try:
        yield
    finally:
        random.setstate(python)
        np.random.set_state(numpy_state)
        torch.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)
        torch.set_grad_enabled(grad)


def seed_all(torch_seed: int, python_seed: int) -> None:
    """Seed torch (CPU and CUDA) with ``torch_seed``, Python's ``random`` and NumPy with ``python_seed``."""
    torch.manual_seed(torch_seed)
    random.seed(python_seed)
    np.random.seed(python_seed)
