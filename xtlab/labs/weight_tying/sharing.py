"""The article's own ``TiedLinear``, verbatim, and two of its claims measured on it: the error it raises for a
module without a weight, and whether the same wrapper shares a feed-forward layer between blocks."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from xtlab.course import seeded_generator
from xtlab.model.feedforward import FeedForward
from xtlab.model.tied_linear import TiedLinear


class ArticleTiedLinear(nn.Module):
    """The article's (Meta Lingua's) ``TiedLinear``, as printed: the module registered, its weight read in forward."""

    def __init__(self, tied_module: nn.Module) -> None:
        super().__init__()
        self.tied_module = tied_module
        if not hasattr(tied_module, "weight"):
            raise AttributeError("Provided module does not have attribute 'weight'")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.tied_module.weight)


def error_without_weight(module: nn.Module | None = None) -> str:
    """The exception type ``ArticleTiedLinear(module)`` raises for a module with no ``weight`` ("" if none)."""
    try:
        ArticleTiedLinear(nn.ReLU() if module is None else module)
    except Exception as err:  # the type raised is the measurement
        return type(err).__name__
    return ""


@dataclass(frozen=True)
class FeedForwardSharing:
    """Block 1's first feed-forward projection replaced by ``ArticleTiedLinear(block 0's)``.

    Attributes:
        biased_difference: largest |shared output - block 0's projection| when the layers have biases (xtlab's and
            x-transformers' default FeedForward).
        unbiased_difference: the same with ``no_bias=True``.
        follows: after editing block 0's weight, block 1's projection follows (no bias).
        weight_keys: state_dict keys of the shared weight (the article's wrapper registers the module again).
    """

    biased_difference: float
    unbiased_difference: float
    follows: bool
    weight_keys: tuple[str, ...]


def _shared_blocks(no_bias: bool, dim: int, seed: int) -> nn.ModuleList:
    torch.manual_seed(seed)
    blocks = nn.ModuleList([FeedForward(dim, mult=2, no_bias=no_bias), FeedForward(dim, mult=2, no_bias=no_bias)])
    blocks[1].net[0] = ArticleTiedLinear(blocks[0].net[0])
    return blocks


def share_feed_forward(dim: int = 8, seed: int = 0) -> FeedForwardSharing:
    """Share block 0's first feed-forward projection with block 1 through the article's wrapper, with and without
    biases, and compare block 1's projection with block 0's on the same input."""
    x = torch.randn(3, dim, generator=seeded_generator(seed))
    differences = {}
    for no_bias in (False, True):
        blocks = _shared_blocks(no_bias, dim, seed)
        with torch.no_grad():
            differences[no_bias] = float((blocks[1].net[0](x) - blocks[0].net[0](x)).abs().max())
    with torch.no_grad():
        before = blocks[1].net[0](x)
        blocks[0].net[0].weight.mul_(2.0)
        follows = torch.equal(blocks[1].net[0](x), 2.0 * before)
    keys = tuple(key for key in blocks.state_dict() if key.endswith("weight") and ".net.0." in key)
    return FeedForwardSharing(differences[False], differences[True], follows, keys)


def article_tied_linear_follows(num_tokens: int = 24, dim: int = 16, seed: int = 0) -> bool:
    """The article's ``TiedLinear`` computes ``x @ embedding.weight.T`` with the embedding's weight as it is when it
    runs: equal to ``F.linear`` at build, after an in-place edit, and after the Parameter is replaced."""
    torch.manual_seed(seed)
    embedding = nn.Embedding(num_tokens, dim)
    layer = ArticleTiedLinear(embedding)
    x = torch.randn(2, 5, dim, generator=seeded_generator(seed))
    results = []
    with torch.no_grad():
        results.append(torch.equal(layer(x), x @ embedding.weight.T))
        embedding.weight.mul_(2.0)
        results.append(torch.equal(layer(x), x @ embedding.weight.T))
        embedding.weight = nn.Parameter(torch.randn(num_tokens, dim, generator=seeded_generator(seed + 1)))
        results.append(torch.equal(layer(x), x @ embedding.weight.T))
    return all(results)


def xtlab_error_without_weight() -> str:
    """The exception type xtlab's ``TiedLinear`` raises for a module without a weight (it checks the type too)."""
    try:
        TiedLinear(nn.ReLU())
    except Exception as err:  # the type raised is the measurement
        return type(err).__name__
    return ""
