"""Weight tying done right (``TiedLinear``) and two teaching exhibits of doing it wrong.

``TiedLinear`` reads the embedding's weight at call time and holds the embedding in a plain tuple,
not as a registered submodule: the state_dict has exactly one key for the tied weight, and every path
that replaces the embedding's Parameter (``to_empty``, ``apply``, ``load_state_dict(assign=True)``)
keeps the tie, because there is nothing else to keep in sync.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from xtlab._checks import check_last_dim, check_module, check_number, shown


def _tied_weight_of(module: nn.Module) -> nn.Parameter:
    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be an nn.Module with a .weight Parameter to tie to, but got {shown(module)}")
    weight = getattr(module, "weight", None)
    if not isinstance(weight, nn.Parameter) or weight.ndim != 2:
        got = (f"a {weight.ndim}-D {type(weight).__name__} of shape {tuple(weight.shape)}"
               if isinstance(weight, Tensor) else shown(weight))
        raise TypeError(f"module must have a 2-D .weight Parameter to tie to, but {type(module).__name__}.weight "
                        f"is {got}")
    return weight


def _check_features(x, weight: Tensor) -> None:
    """x (..., in_features) floating, where in_features is the tied weight's second dimension."""
    check_last_dim("x", x, weight.shape[1])


class TiedLinear(nn.Module):
    """A bias-free linear layer whose weight *is* another module's weight, read at call time.

    Args:
        module: the module to tie to (e.g. an ``nn.Embedding`` of shape (num_tokens, dim)).
        scale: a constant the logits are multiplied by (1.0; ``TransformerWrapper`` passes ``dim ** -0.5``, as
            x-transformers scales tied logits).

    Shape: (..., dim) -> (..., num_tokens).
    """

    def __init__(self, module: nn.Module, scale: float = 1.0):
        _tied_weight_of(module)
        check_number("scale", scale)
        super().__init__()
        self._tied = (module,)  # a tuple: not a submodule, so one state_dict key; deepcopy and pickle follow it
        self.scale = float(scale)

    @property
    def tied_module(self) -> nn.Module:
        return self._tied[0]

    @property
    def weight(self) -> nn.Parameter:
        """The tied module's weight (the same Parameter object)."""
        return _tied_weight_of(self._tied[0])

    def __setattr__(self, name: str, value) -> None:
        if name == "weight":
            raise AttributeError("TiedLinear.weight is read-only: it is the tied module's weight. "
                                 "Assign to the embedding's weight instead.")
        super().__setattr__(name, value)

    def forward(self, x: Tensor) -> Tensor:
        weight = self.weight
        _check_features(x, weight)
        out = F.linear(x, weight)
        return out if self.scale == 1.0 else out * self.scale

    def extra_repr(self) -> str:
        scale = f", scale={self.scale:g}" if self.scale != 1.0 else ""
        return f"tied to {type(self.tied_module).__name__}, weight shape {tuple(self.weight.shape)}{scale}"


class RegisteredTiedLinear(nn.Module):
    """Teaching exhibit (Meta Lingua's first fix): the tied module is *registered* as a submodule.

    The tie holds in memory, but the weight appears twice in the state_dict (``tied_module.weight``),
    which safetensors refuses to save.
    """

    def __init__(self, module: nn.Module):
        _tied_weight_of(module)
        super().__init__()
        self.tied_module = module

    @property
    def weight(self) -> nn.Parameter:
        """The tied module's weight (the same Parameter object)."""
        return self.tied_module.weight

    def forward(self, x: Tensor) -> Tensor:
        _check_features(x, self.tied_module.weight)
        return F.linear(x, self.tied_module.weight)


def tie_naively(model: nn.Module) -> nn.Module:
    """Teaching exhibit: tie by plain assignment, ``model.to_logits.weight = model.token_emb.weight``.

    The two modules then share one Parameter object until any path creates new Parameters
    (meta device + ``to_empty``, ``apply`` with new Parameters, ...), which silently unties them.
    """
    check_module("model", model)
    emb, out = getattr(model, "token_emb", None), getattr(model, "to_logits", None)
    if not isinstance(emb, nn.Embedding):
        raise TypeError(f"tie_naively needs model.token_emb to be an nn.Embedding, but got {type(emb).__name__}")
    if not isinstance(out, nn.Linear):
        raise TypeError(f"tie_naively needs model.to_logits to be an nn.Linear, but got {type(out).__name__}")
    if out.weight.shape != emb.weight.shape:
        raise ValueError(f"to_logits.weight {tuple(out.weight.shape)} and token_emb.weight "
                         f"{tuple(emb.weight.shape)} must have the same shape to be tied")
    out.weight = emb.weight
    return model


def tie_registered(model: nn.Module) -> nn.Module:
    """Teaching exhibit: replace ``to_logits`` with a ``RegisteredTiedLinear`` over ``token_emb``."""
    check_module("model", model)
    emb = getattr(model, "token_emb", None)
    if not isinstance(emb, nn.Embedding):
        raise TypeError(f"tie_registered needs model.token_emb to be an nn.Embedding, but got {type(emb).__name__}")
    model.to_logits = RegisteredTiedLinear(emb)
    return model
