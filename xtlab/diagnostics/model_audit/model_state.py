"""Put a model back exactly as it was: parameter and buffer objects, their memory, values, gradients and
``requires_grad``, train/eval flags and every plain attribute of every module (a per-layer layer-dropout tuple,
a probability, a hook dict); and the global random state (Python, NumPy, torch) around an audit."""

from __future__ import annotations

import copy
import random
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

_TENSOR_DICTS = ("_parameters", "_buffers", "_modules")
_CONTAINERS = (list, dict, set)


def _attributes(module: nn.Module) -> dict[str, tuple[object, object]]:
    """Every plain attribute of ``module``: name -> (the object, a shallow copy of its contents when it is a
    list, dict or set, so a container changed in place is put back too)."""
    return {name: (value, copy.copy(value) if isinstance(value, _CONTAINERS) else None)
            for name, value in vars(module).items() if name not in _TENSOR_DICTS}


def _put_back_contents(value: object, contents: object) -> None:
    if isinstance(value, list):
        value[:] = contents
    elif isinstance(value, (dict, set)):
        value.clear()
        value.update(contents)


class ModelSnapshot:
    """Everything a check may change in ``model``; :meth:`restore` puts it back.

    Ties survive a restore: the same Parameter objects return to the same modules, each pointing at its
    original memory again (so two Parameters that shared memory share it again), with the original values,
    gradients and ``requires_grad``. Every module's plain attributes (``training``, a layer-dropout probability
    or per-layer tuple, hook dicts) return as they were: replaced ones are put back, added ones removed.
    """

    def __init__(self, model: nn.Module):
        self._modules = [(module, dict(module._parameters), dict(module._buffers), dict(module._modules),
                          _attributes(module)) for module in model.modules()]
        self._tensors: dict[int, tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None, bool]] = {}
        for _, parameters, buffers, _, _ in self._modules:
            for tensor in (*parameters.values(), *buffers.values()):
                if tensor is not None and id(tensor) not in self._tensors:
                    self._tensors[id(tensor)] = (tensor, tensor.data, tensor.detach().clone(), tensor.grad,
                                                 tensor.requires_grad)
        self._state = {key: value.detach().clone() for key, value in model.state_dict().items()}

    def restore(self) -> None:
        for module, parameters, buffers, children, attributes in self._modules:
            module._parameters.clear()
            module._parameters.update(parameters)
            module._buffers.clear()
            module._buffers.update(buffers)
            module._modules.clear()
            module._modules.update(children)
            for name in [name for name in vars(module) if name not in _TENSOR_DICTS and name not in attributes]:
                del module.__dict__[name]
            for name, (value, contents) in attributes.items():
                module.__dict__[name] = value
                if contents is not None:
                    _put_back_contents(value, contents)
        with torch.no_grad():
            for tensor, data, values, grad, requires_grad in self._tensors.values():
                tensor.data = data
                data.copy_(values)
                tensor.grad = grad
                if tensor.is_leaf:
                    tensor.requires_grad_(requires_grad)

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
