"""Ready adapters for xtlab's ``TransformerWrapper``, x-transformers' ``TransformerWrapper`` and
``torch.nn.Transformer``; :func:`adapter_for` picks one by the model's class.

Each factory reads the model once and leaves out the hooks for features this instance lacks (no memories when
``max_mem_len == 0``, no tie pair when there is no output projection), so those checks "could not run".
Every function here is at module level, so the adapters pickle (the DDP step sends them to its processes).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from xtlab._checks import check_module, shown
from xtlab.diagnostics.model_audit.adapter import Batch, ModelAdapter

BATCH_SIZE = 2


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


# --- language models: xtlab and x-transformers TransformerWrapper ------------------------------------------------

def language_model_batch(model: nn.Module, generator: torch.Generator) -> Batch:
    """``(tokens,)``: (2, max_seq_len) token ids drawn from ``generator``, on the model's device."""
    tokens = torch.randint(0, model.num_tokens, (BATCH_SIZE, model.max_seq_len), generator=generator)
    return (tokens.to(_device(model)),)


def language_model_forward(model: nn.Module, batch: Batch) -> Tensor:
    return model(batch[0])


def next_token_loss(model: nn.Module, batch: Batch) -> Tensor:
    """Cross-entropy of predicting ``tokens[:, 1:]`` from ``tokens[:, :-1]``."""
    tokens = batch[0]
    logits = model(tokens[:, :-1])
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), tokens[:, 1:].reshape(-1))


def xl_step(model: nn.Module, tokens: Tensor, mems: list[Tensor] | None) -> tuple[Tensor, list[Tensor]]:
    """One segment: ``model(tokens, mems=mems, return_mems=True)`` (the same call in both libraries)."""
    return model(tokens, mems=mems, return_mems=True)


def xtlab_get_layer_dropout(model: nn.Module) -> float:
    return float(model.attn_layers.layer_dropout)


def xtlab_set_layer_dropout(model: nn.Module, p: float) -> None:
    model.attn_layers.layer_dropout = float(p)


def x_transformers_get_layer_dropout(model: nn.Module) -> float:
    return float(max(model.attn_layers.layer_dropouts))


def x_transformers_set_layer_dropout(model: nn.Module, p: float) -> None:
    model.attn_layers.layer_dropouts = (float(p),) * len(model.attn_layers.layer_dropouts)


def xtlab_adapter(model: nn.Module) -> ModelAdapter:
    """The adapter for an xtlab ``TransformerWrapper``."""
    from xtlab.model import TransformerWrapper

    if not isinstance(model, TransformerWrapper):
        raise TypeError(f"model must be an xtlab TransformerWrapper, but got {shown(model)}")
    has_output = model.to_logits is not None
    return ModelAdapter(
        "xtlab TransformerWrapper", language_model_batch, next_token_loss, language_model_forward,
        embedding="token_emb" if has_output else None, output="to_logits" if has_output else None,
        get_layer_dropout=xtlab_get_layer_dropout, set_layer_dropout=xtlab_set_layer_dropout,
        xl_step=xl_step if model.max_mem_len > 0 else None,
    )


def _is_x_transformers_wrapper(model: nn.Module) -> bool:
    try:
        from x_transformers import TransformerWrapper
    except ImportError:  # pragma: no cover - x-transformers is a dependency of xtlab
        return False
    return isinstance(model, TransformerWrapper)


def x_transformers_adapter(model: nn.Module) -> ModelAdapter:
    """The adapter for an x-transformers ``TransformerWrapper`` (its tie is a function over ``token_emb``)."""
    if not _is_x_transformers_wrapper(model):
        raise TypeError(f"model must be an x-transformers TransformerWrapper, but got {shown(model)}")
    has_output = model.to_logits is not None
    return ModelAdapter(
        "x-transformers TransformerWrapper", language_model_batch, next_token_loss, language_model_forward,
        embedding="token_emb" if has_output else None, output="to_logits" if has_output else None,
        get_layer_dropout=x_transformers_get_layer_dropout, set_layer_dropout=x_transformers_set_layer_dropout,
        xl_step=xl_step if (model.max_mem_len or 0) > 0 else None,
    )


# --- torch.nn.Transformer (encoder-decoder on feature vectors) --------------------------------------------------

SOURCE_LENGTH, TARGET_LENGTH = 6, 5


def torch_transformer_batch(model: nn.Module, generator: torch.Generator) -> Batch:
    """``(src, tgt, target)`` feature sequences of width ``d_model`` (batch first or not, as the model is)."""
    shape = (lambda n: (BATCH_SIZE, n, model.d_model)) if model.batch_first else (lambda n: (n, BATCH_SIZE,
                                                                                             model.d_model))
    device = _device(model)
    return tuple(torch.randn(shape(n), generator=generator).to(device)
                 for n in (SOURCE_LENGTH, TARGET_LENGTH, TARGET_LENGTH))


def torch_transformer_forward(model: nn.Module, batch: Batch) -> Tensor:
    src, tgt, _ = batch
    mask = nn.Transformer.generate_square_subsequent_mask(TARGET_LENGTH, device=tgt.device)
    return model(src, tgt, tgt_mask=mask)


def torch_transformer_loss(model: nn.Module, batch: Batch) -> Tensor:
    """Mean squared error between the decoder's output (causal target mask) and a random target."""
    return F.mse_loss(torch_transformer_forward(model, batch), batch[2])


def torch_transformer_adapter(model: nn.Module) -> ModelAdapter:
    """The adapter for ``torch.nn.Transformer``: no embeddings, no layer dropout, no memories."""
    if not isinstance(model, nn.Transformer):
        raise TypeError(f"model must be a torch.nn.Transformer, but got {shown(model)}")
    return ModelAdapter("torch.nn.Transformer", torch_transformer_batch, torch_transformer_loss,
                        torch_transformer_forward)


def adapter_for(model: nn.Module) -> ModelAdapter:
    """The ready adapter for ``model``'s class.

    Raises:
        TypeError: ``model`` is not a module, or no ready adapter fits it (write a :class:`ModelAdapter`).
    """
    check_module("model", model)
    from xtlab.model import TransformerWrapper

    if isinstance(model, TransformerWrapper):
        return xtlab_adapter(model)
    if _is_x_transformers_wrapper(model):
        return x_transformers_adapter(model)
    if isinstance(model, nn.Transformer):
        return torch_transformer_adapter(model)
    raise TypeError(f"no ready adapter for {type(model).__module__}.{type(model).__name__}: write a ModelAdapter "
                    f"(make_batch, loss, and the optional hooks) and pass it as adapter=")
