"""Lab 05 exercise material: models with dead weight for the unused-parameter finder, and their answer keys
(computed with ``xtlab.diagnostics.find_unused_parameters``, never typed)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from xtlab.data.seq2seq import make_seq2seq_batch
from xtlab.diagnostics.unused_parameters import find_unused_parameters
from xtlab.labs.encoder_decoder_ddp.experiments import SEQ_LENGTH, build_seq2seq_model
from xtlab.seeding import seed_everything
from xtlab.threads import one_cpu_thread


class MysteryTagger(nn.Module):
    """Tags each token of a (b, n) sequence: embedding, a small MLP, one head. Some of its parameters are dead weight.

    Shape: forward x (b, n) token ids -> scalar loss against ``x`` itself (a toy target).
    """

    def __init__(self, num_tokens: int = 16, dim: int = 16):
        super().__init__()
        self.embed = nn.Embedding(num_tokens, dim)
        self.position = nn.Parameter(torch.zeros(32, dim))
        self.mixer = nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.Linear(dim, dim))
        self.gate = nn.Linear(dim, 1)  # built for a gated variant that forward no longer uses
        self.head = nn.Linear(dim, num_tokens)
        self.aux_head = nn.Linear(dim, num_tokens)  # an auxiliary loss someone switched off
        self.scale = nn.Parameter(torch.ones(1), requires_grad=False)  # frozen: DDP ignores it

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x) + self.position[: x.shape[1]]  # (b, n, dim)
        h = h + self.mixer(h) * self.scale
        logits = self.head(h)  # (b, n, num_tokens)
        return nn.functional.cross_entropy(logits.transpose(1, 2), x)


class TwoHeads(nn.Module):
    """A shared trunk with two heads that returns both outputs as a dict (no loss); a third head is never called.

    Shape: forward x (b, dim) -> {"class": (b, 3), "score": (b, 1)}.
    """

    def __init__(self, dim: int = 8):
        super().__init__()
        self.trunk = nn.Linear(dim, dim)
        self.classify = nn.Linear(dim, 3)
        self.score = nn.Linear(dim, 1)
        self.old_score = nn.Linear(dim, 1)  # replaced by ``score``, still built

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h = torch.tanh(self.trunk(x))
        return {"class": self.classify(h), "score": self.score(h)}


def _mystery() -> tuple[nn.Module, tuple]:
    seed_everything(0)
    return MysteryTagger(), (torch.randint(0, 16, (4, 8), generator=torch.Generator().manual_seed(0)),)


def _encoder_decoder() -> tuple[nn.Module, tuple]:
    batch = make_seq2seq_batch("reverse", 4, SEQ_LENGTH, generator=torch.Generator().manual_seed(1))
    return build_seq2seq_model(encoder_keeps_logits=True, seed=3), (batch.src, batch.tgt)


def _two_heads() -> tuple[nn.Module, tuple]:
    seed_everything(0)
    return TwoHeads(), (torch.randn(5, 8, generator=torch.Generator().manual_seed(2)),)


FINDER_CASES: dict[str, tuple[str, Callable[[], tuple[nn.Module, tuple]]]] = {
    "mystery_tagger": ("MysteryTagger: returns a loss; one frozen parameter", _mystery),
    "encoder_decoder": ("the lab's XTransformer with encoder_keeps_logits=True, batch (src, tgt)", _encoder_decoder),
    "two_heads": ("TwoHeads: returns a dict of two tensors, no loss", _two_heads),
}


def build_finder_case(name: str) -> tuple[nn.Module, tuple]:
    """``(model, batch)`` of one finder case: the model is fresh and seeded, ``model(*batch)`` runs it."""
    if name not in FINDER_CASES:
        raise ValueError(f"name must be one of {sorted(FINDER_CASES)}, but got {name!r}")
    return FINDER_CASES[name][1]()


def output_loss(output) -> torch.Tensor:
    """A scalar that depends on every tensor in ``output`` (a tensor, or tuples/lists/dicts of them; anything
    else counts as zero)."""
    if isinstance(output, torch.Tensor):
        return output.float().sum()
    if isinstance(output, dict):
        output = list(output.values())
    if isinstance(output, (list, tuple)):
        return sum((output_loss(value) for value in output), torch.zeros(()))
    return torch.zeros(())


def finder_loss(model: nn.Module, batch: tuple) -> torch.Tensor:
    """``output_loss(model(*batch))``: the :data:`xtlab.training.LossFn` of the finder cases."""
    return output_loss(model(*batch))


def finder_answer_key(name: str) -> list[str]:
    """The trainable parameters of case ``name`` that get no gradient, from the xtlab finder."""
    model, batch = build_finder_case(name)
    with one_cpu_thread():
        return [p.name for p in find_unused_parameters(model, finder_loss, batch)]
