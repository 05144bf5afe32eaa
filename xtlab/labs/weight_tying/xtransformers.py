"""A real library's tie: x-transformers computes ``t @ token_emb.emb.weight.t()`` in a lambda that closes over
the model. This module measures, live, what ``copy.deepcopy`` and ``torch.save(model)`` do with such a model,
next to xtlab's ``TiedLinear`` (a module holding the embedding)."""

from __future__ import annotations

import copy
import inspect
import io
from dataclasses import dataclass, replace

import torch
from torch import nn
from x_transformers import Decoder as XDecoder
from x_transformers import TransformerWrapper as XTransformerWrapper
from x_transformers.x_transformers import Attention as XAttention

from xtlab.labs.weight_tying.models import ModelSize, decoder
from xtlab.model import TransformerWrapper
from xtlab.threads import one_cpu_thread
from xtlab.widgets.show_source import Source, show_source

LIBRARIES = ("x-transformers", "xtlab")


@dataclass(frozen=True)
class CopyAndPickle:
    """What a deepcopy and a whole-model ``torch.save`` did to one tied model.

    Attributes:
        library: "x-transformers" or "xtlab".
        to_logits_type: the type of ``model.to_logits`` (a function for x-transformers).
        copy_follows_original: editing the ORIGINAL's embedding changes the copy's logits.
        copy_follows_itself: editing the copy's own embedding changes the copy's output projection.
        pickles: ``torch.save(model)`` succeeded; pickle_error: its error otherwise.
        state_dict_round_trip: the state_dict loads into a fresh model and gives the same logits.
        parameters: elements in ``model.parameters()`` (a tied weight counted once): the two models have equal sizes.
    """

    library: str
    to_logits_type: str
    copy_follows_original: bool
    copy_follows_itself: bool
    pickles: bool
    pickle_error: str | None
    state_dict_round_trip: bool
    parameters: int


def build_tied(library: str, seed: int = 0) -> nn.Module:
    """A tiny tied language model from ``library`` ("x-transformers" or "xtlab"), heads of ``dim // heads``."""
    if library not in LIBRARIES:
        raise ValueError(f"library must be one of {LIBRARIES}, but got {library!r}")
    size = ModelSize()
    torch.manual_seed(seed)
    if library == "x-transformers":
        layers = XDecoder(dim=size.dim, depth=size.depth, heads=size.heads, attn_dim_head=size.dim // size.heads)
        return XTransformerWrapper(num_tokens=size.num_tokens, max_seq_len=size.max_seq_len, tie_embedding=True,
                                   attn_layers=layers)
    return TransformerWrapper(size.num_tokens, size.max_seq_len, decoder(size), tie_embedding=True)


def _embedding(model: nn.Module) -> torch.Tensor:
    emb = model.token_emb
    return emb.emb.weight if hasattr(emb, "emb") else emb.weight  # x-transformers wraps nn.Embedding in .emb


def _changes(fn, edit) -> bool:
    before = fn()
    with torch.no_grad():
        edit()
    return not torch.equal(before, fn())


def copy_and_pickle(library: str, seed: int = 0) -> CopyAndPickle:
    """Deepcopy a tied model, then edit the original's / the copy's embedding and watch the copy's logits."""
    with one_cpu_thread():
        return _copy_and_pickle(library, seed)


def _copy_and_pickle(library: str, seed: int) -> CopyAndPickle:
    original = build_tied(library, seed).eval()
    copied = copy.deepcopy(original).eval()
    hidden = torch.randn(2, 5, 32, generator=torch.Generator().manual_seed(seed))
    tokens = torch.randint(0, 32, (2, 8), generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        follows_original = _changes(lambda: copied(tokens), lambda: _embedding(original).mul_(2.0))
        follows_itself = _changes(lambda: copied.to_logits(hidden), lambda: _embedding(copied).mul_(3.0))
    try:
        torch.save(original, io.BytesIO())
        pickles, error = True, None
    except Exception as err:  # any pickling failure is the measurement
        pickles, error = False, f"{type(err).__name__}: {err}"
    buffer = io.BytesIO()
    torch.save(original.state_dict(), buffer)
    buffer.seek(0)
    fresh = build_tied(library, seed + 1).eval()
    fresh.load_state_dict(torch.load(buffer, weights_only=True))
    with torch.no_grad():
        round_trip = torch.equal(fresh(tokens), original(tokens))
    return CopyAndPickle(library, type(original.to_logits).__name__, follows_original, follows_itself,
                         pickles, error, round_trip, sum(p.numel() for p in original.parameters()))


def xtransformers_tie_source() -> Source:
    """The lines of the installed x-transformers ``TransformerWrapper.__init__`` that tie the output to the
    embedding (from ``elif tie_embedding:`` to the ``to_logits`` it assigns), with file and line numbers."""
    whole = show_source(XTransformerWrapper.__init__, emphasize=["tie_embedding_scale", "self.to_logits"])
    start = next(i for i, line in enumerate(whole.lines) if line.strip().startswith("elif tie_embedding"))
    end = next(i for i in range(start, len(whole.lines)) if "self.to_logits" in whole.lines[i])
    first = whole.first_line + start
    return replace(whole, first_line=first, lines=whole.lines[start:end + 1],
                   emphasized=tuple(n for n in whole.emphasized if first <= n <= whole.first_line + end))


def xtransformers_default_head_size() -> int:
    """The head size x-transformers' attention uses when none is given (``Attention``'s ``dim_head`` default)."""
    return inspect.signature(XAttention.__init__).parameters["dim_head"].default


def xtransformers_default_tie_scale(dim: int) -> float:
    """The scale x-transformers' tied logits are multiplied by, read from a model built with ``tie_embedding``."""
    torch.manual_seed(0)
    model = XTransformerWrapper(num_tokens=8, max_seq_len=4, tie_embedding=True,
                                attn_layers=XDecoder(dim=dim, depth=1, heads=1))
    return float(model.tie_embedding_scale)
