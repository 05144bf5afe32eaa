"""Small models and module-level adapter functions for the report-card tests (spawned DDP ranks import them)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from xtlab.diagnostics.model_audit import ModelAdapter


class Head(nn.Module):
    """Embedding -> linear -> output, optionally tied naively and with a head that forward never uses."""

    def __init__(self, tie: bool = False, unused: bool = False):
        super().__init__()
        self.num_tokens = 10
        self.embed = nn.Embedding(10, 8)
        self.mix = nn.Linear(8, 8)
        self.out = nn.Linear(8, 10, bias=False)
        if tie:
            self.out.weight = self.embed.weight
        self.unused_head = nn.Linear(8, 2) if unused else None

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.out(torch.tanh(self.mix(self.embed(tokens))))


def head_batch(model, generator):
    return (torch.randint(0, 10, (2, 5), generator=generator),)


def head_loss(model, batch):
    logits = model(batch[0])
    return F.cross_entropy(logits.reshape(-1, 10), batch[0].reshape(-1))


def head_forward(model, batch):
    return model(batch[0])


def head_adapter(tie: bool = True) -> ModelAdapter:
    return ModelAdapter("Head", head_batch, head_loss, head_forward,
                        embedding="embed" if tie else None, output="out" if tie else None)
