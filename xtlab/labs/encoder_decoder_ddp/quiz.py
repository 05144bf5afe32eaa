"""Lab 05 exercise material: a mystery model with unused parameters, and models whose DDP fate a learner predicts.

The answer keys are computed with the unused-parameter finder, never typed in.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from xtlab.diagnostics.unused_parameters import find_unused_parameters
from xtlab.labs.encoder_decoder_ddp.experiments import build_seq2seq_model, seq2seq_loss_fn
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


def build_mystery_model(seed: int = 0) -> MysteryTagger:
    """The exercise's mystery model, seeded."""
    seed_everything(seed)
    return MysteryTagger()


def mystery_loss_fn(model: nn.Module) -> torch.Tensor:
    """One batch through the mystery model (what a learner passes to ``find_unused_parameters``)."""
    x = torch.randint(0, 16, (4, 8), generator=torch.Generator().manual_seed(0))
    return model(x)


def mystery_unused_names() -> list[str]:
    """The answer key of exercise 1, from the finder."""
    with one_cpu_thread():
        return [p.name for p in find_unused_parameters(build_mystery_model(), mystery_loss_fn)]


def _frozen_logits() -> nn.Module:
    model = build_seq2seq_model(encoder_keeps_logits=True)
    model.encoder.to_logits.weight.requires_grad_(False)
    return model


QUIZ_MODELS: dict[str, tuple[str, Callable[[], nn.Module]]] = {
    "fixed": ("XTransformer built without the encoder to_logits", lambda: build_seq2seq_model()),
    "bug": ("XTransformer(encoder_keeps_logits=True)", lambda: build_seq2seq_model(encoder_keeps_logits=True)),
    "frozen_bug": ("encoder_keeps_logits=True, but encoder.to_logits.weight.requires_grad_(False)", _frozen_logits),
    "tied_decoder": ("decoder with dec_tie_embedding=True (to_logits reuses token_emb)",
                     lambda: _tied_decoder()),
    "layer_dropout": ("dec_layer_dropout=0.25 (lab 01)", lambda: build_seq2seq_model(dec_layer_dropout=0.25)),
}


def _tied_decoder() -> nn.Module:
    seed_everything(0)
    from xtlab.model import XTransformer

    return XTransformer(dim=32, enc_num_tokens=11, enc_depth=1, enc_heads=2, enc_max_seq_len=6, dec_num_tokens=11,
                        dec_depth=1, dec_heads=2, dec_max_seq_len=7, dec_tie_embedding=True)


def runs_under_ddp(model: nn.Module, steps: int = 4, seed: int = 0) -> bool:
    """Whether every trainable parameter gets a gradient in each of ``steps`` training-mode passes: the condition
    for DDP without ``find_unused_parameters=True``. Several passes, because layer dropout skips at random."""
    model.train()
    torch.manual_seed(seed)
    return all(not find_unused_parameters(model, seq2seq_loss_fn(seed=step)) for step in range(steps))


def quiz_answer_key() -> dict[str, bool]:
    """Exercise 2's answer key: model name -> runs under DDP without ``find_unused_parameters``."""
    with one_cpu_thread():
        return {name: runs_under_ddp(build()) for name, (_, build) in QUIZ_MODELS.items()}
