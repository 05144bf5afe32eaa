"""The hidden models of the last exercise: four small language models in designs the notebook never shows, each
with the findings an audit must report, stated by hand (the truth the checker compares with).

- ``GatedLM``: tied by assignment; ReZero blocks whose gate starts at 0 (the branch is used, its gradient is
  exactly zero); a norm whose gain is called ``gamma``; layer dropout called ``skip_prob``; a frozen positional
  table; a buffer. Handed over in training mode.
- ``RoutedLM``: tied through a module that holds the embedding; a noisy router whose ``w_noise`` is used only in
  training (Shazeer et al., 2017); a frozen part kept in eval mode inside a model in training mode; a pooler the
  forward pass never calls.
- ``ConvLM``: a causal convolution with BatchNorm (a training pass updates its running statistics); the output
  is a function reading the embedding (as x-transformers ties it). Handed over in eval mode.
- ``CopiedHeadLM``: a head initialised as a copy of the embedding (equal values, two Parameters: not tied),
  handed over in eval mode mid-training, with last step's gradients still in ``.grad``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from xtlab.diagnostics.model_audit import ModelAdapter
from xtlab.labs.audit.models import seeded

NUM_TOKENS, SEQ_LEN, DIM = 20, 6, 16


class RMSNorm(nn.Module):
    """Root-mean-square norm with its gain called ``gamma``."""

    def __init__(self, dim: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        return self.gamma * x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6)


class ZeroGatedBlock(nn.Module):
    """ReZero: ``x + gate * ff(norm(x))`` with the gate starting at 0."""

    def __init__(self, dim: int):
        super().__init__()
        self.pre = RMSNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Dropout(0.1), nn.Linear(2 * dim, dim))
        self.gate = nn.Parameter(torch.zeros(()))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.gate * self.ff(self.pre(x))


class GatedLM(nn.Module):
    """Token ids (b, n) -> logits (b, n, num_tokens); position t mixes the running mean of positions 0..t."""

    def __init__(self, depth: int = 3, skip_prob: float = 0.5):
        super().__init__()
        self.num_tokens, self.seq_len, self.skip_prob = NUM_TOKENS, SEQ_LEN, skip_prob
        self.tokens = nn.Embedding(NUM_TOKENS, DIM)
        angles = torch.arange(SEQ_LEN).unsqueeze(1) / 100 ** (torch.arange(DIM) / DIM)
        self.positions = nn.Parameter(torch.sin(angles + (torch.arange(DIM) % 2) * math.pi / 2), requires_grad=False)
        self.register_buffer("counts", torch.arange(1, SEQ_LEN + 1, dtype=torch.float).unsqueeze(1))
        self.mix = nn.Linear(DIM, DIM)
        self.blocks = nn.ModuleList(ZeroGatedBlock(DIM) for _ in range(depth))
        self.final = RMSNorm(DIM)
        self.unembed = nn.Linear(DIM, NUM_TOKENS, bias=False)
        self.unembed.weight = self.tokens.weight  # tied by assignment

    def forward(self, idx: Tensor) -> Tensor:
        n = idx.shape[1]
        x = self.tokens(idx) + self.positions[:n]
        x = x + self.mix(x.cumsum(1) / self.counts[:n])  # (b, n, dim)
        for block in self.blocks:
            if self.training and self.skip_prob > 0 and float(torch.rand(())) < self.skip_prob:
                continue
            x = block(x)
        return self.unembed(self.final(x))


class TiedReadout(nn.Module):
    """Logits read from the embedding module it holds (registered twice: the tie), plus a bias of its own."""

    def __init__(self, embedding: nn.Embedding):
        super().__init__()
        self.embedding = embedding
        self.bias = nn.Parameter(torch.zeros(embedding.num_embeddings))

    def forward(self, x: Tensor) -> Tensor:
        return x @ self.embedding.weight.t() + self.bias


class NoisyRouter(nn.Module):
    """Mixing weights over experts; in training, noise scaled by ``softplus(x @ w_noise)`` joins the logits."""

    def __init__(self, dim: int, experts: int):
        super().__init__()
        self.w_gate = nn.Parameter(0.1 * torch.randn(dim, experts))
        self.w_noise = nn.Parameter(0.1 * torch.randn(dim, experts))

    def forward(self, x: Tensor) -> Tensor:
        logits = x @ self.w_gate
        if self.training:
            logits = logits + torch.randn_like(logits) * F.softplus(x @ self.w_noise)
        return logits.softmax(-1)  # (b, n, experts)


class RoutedLM(nn.Module):
    """Embedding, a frozen pretrained part, a causal mean, two experts mixed by a noisy router, a tied readout."""

    def __init__(self):
        super().__init__()
        self.num_tokens, self.seq_len = NUM_TOKENS, SEQ_LEN
        self.embed = nn.Embedding(NUM_TOKENS, DIM)
        self.frozen = nn.Sequential(nn.Linear(DIM, DIM), nn.Dropout(0.2))
        self.frozen.requires_grad_(False)
        weights = torch.tril(torch.ones(SEQ_LEN, SEQ_LEN))
        self.register_buffer("causal_mean", weights / weights.sum(1, keepdim=True))
        self.router = NoisyRouter(DIM, 2)
        self.experts = nn.ModuleList(nn.Linear(DIM, DIM) for _ in range(2))
        self.norm = nn.LayerNorm(DIM)
        self.pooler = nn.Linear(DIM, DIM)  # for a classification head; the language model never calls it
        self.readout = TiedReadout(self.embed)

    def forward(self, idx: Tensor) -> Tensor:
        n = idx.shape[1]
        x = self.embed(idx)
        x = self.causal_mean[:n, :n] @ (x + self.frozen(x))  # (b, n, dim)
        weights = self.router(x)
        x = x + sum(weights[..., i:i + 1] * expert(x) for i, expert in enumerate(self.experts))
        return self.readout(self.norm(x))


class ConvLM(nn.Module):
    """A causal convolution (left padding) with BatchNorm; the output is a function of the embedding."""

    def __init__(self):
        super().__init__()
        self.num_tokens, self.seq_len = NUM_TOKENS, SEQ_LEN
        self.embedding = nn.Embedding(NUM_TOKENS, DIM)
        self.conv = nn.Conv1d(DIM, DIM, kernel_size=3)
        self.bn = nn.BatchNorm1d(DIM)
        self.to_logits = lambda h: h @ self.embedding.weight.t()  # tied by a function, as x-transformers ties

    def forward(self, idx: Tensor) -> Tensor:
        x = self.embedding(idx).transpose(1, 2)  # (b, dim, n)
        x = x + F.gelu(self.bn(self.conv(F.pad(x, (2, 0)))))
        return self.to_logits(x.transpose(1, 2))


class CopiedHeadLM(nn.Module):
    """Embedding, a causal mean, an MLP, and a head whose weight starts as a copy of the embedding's."""

    def __init__(self):
        super().__init__()
        self.num_tokens, self.seq_len = NUM_TOKENS, SEQ_LEN
        self.embed = nn.Embedding(NUM_TOKENS, DIM)
        self.proj = nn.Linear(DIM, DIM)
        self.drop = nn.Dropout(0.1)
        self.ln = nn.LayerNorm(DIM)
        self.head = nn.Linear(DIM, NUM_TOKENS)
        with torch.no_grad():
            self.head.weight.copy_(self.embed.weight)  # initialised from the embedding: equal values, not tied

    def forward(self, idx: Tensor) -> Tensor:
        x = self.embed(idx)
        counts = torch.arange(1, idx.shape[1] + 1, device=idx.device).unsqueeze(1)
        x = x.cumsum(1) / counts  # (b, n, dim)
        return self.head(self.ln(x + self.drop(F.gelu(self.proj(x)))))


# --- one adapter for the four: a batch of seq_len + 1 ids, the next-token loss, skip_prob where there is one -----

def hidden_batch(model: nn.Module, generator: torch.Generator) -> tuple[Tensor]:
    return (torch.randint(0, model.num_tokens, (2, model.seq_len + 1), generator=generator),)


def hidden_forward(model: nn.Module, batch: tuple[Tensor]) -> Tensor:
    return model(batch[0])


def hidden_loss(model: nn.Module, batch: tuple[Tensor]) -> Tensor:
    tokens = batch[0]
    logits = model(tokens[:, :-1])
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1))


def get_skip_prob(model: nn.Module) -> float:
    return model.skip_prob


def set_skip_prob(model: nn.Module, p: float) -> None:
    model.skip_prob = p


def hidden_adapter(model: nn.Module) -> ModelAdapter:
    """The adapter the checker hands over with each hidden model (layer-dropout hooks only for ``GatedLM``)."""
    hooks = {"get_layer_dropout": get_skip_prob, "set_layer_dropout": set_skip_prob} if hasattr(model, "skip_prob") \
        else {}
    return ModelAdapter(type(model).__name__, hidden_batch, hidden_loss, hidden_forward, **hooks)


# --- the factories: weights seeded, the mode each model is handed over in --------------------------------------

def gated_lm(seed: int) -> GatedLM:
    return seeded(GatedLM, seed).train()


def routed_lm(seed: int) -> RoutedLM:
    model = seeded(RoutedLM, seed).train()
    model.frozen.eval()  # a pretrained part kept in eval mode while the rest trains
    return model


def conv_lm(seed: int) -> ConvLM:
    return seeded(ConvLM, seed).eval()


def copied_head_lm(seed: int) -> CopiedHeadLM:
    model = seeded(CopiedHeadLM, seed).train()
    batch = hidden_batch(model, torch.Generator().manual_seed(seed))
    seeded(lambda: hidden_loss(model, batch).backward(), seed)  # mid-training: last step's gradients are kept
    return model.eval()  # just evaluated


@dataclass(frozen=True)
class HiddenModel:
    """One hidden case: how to build it and what an audit must find in it (stated by hand).

    Attributes:
        setting: how the case reads in a verdict.
        build: ``build(seed) -> model``.
        seed: weights and the global torch seed the learner's code starts from.
        tied: each tie, every name of the Parameter. unused: trainable parameters one training step leaves without
            a gradient. no_decay: what the lab's rule (by type) exempts from weight decay (any name of the
            Parameter may be used).
        train_only: parameters used only in training mode (reported unused by a step in eval mode).
    """

    setting: str
    build: Callable[[int], nn.Module]
    seed: int
    tied: tuple[tuple[str, ...], ...]
    unused: tuple[str, ...]
    no_decay: tuple[str, ...]
    train_only: tuple[str, ...] = ()


_GATED_NO_DECAY = ("tokens.weight", "mix.bias", "final.gamma") + tuple(
    f"blocks.{i}.{name}" for i in range(3) for name in ("pre.gamma", "ff.0.bias", "ff.3.bias"))

HIDDEN_MODELS = (
    HiddenModel("a model tied by assignment, with zero-initialised gates, layer dropout 0.5 and a frozen "
                "positional table, in training mode", gated_lm, 11,
                tied=(("tokens.weight", "unembed.weight"),), unused=(), no_decay=_GATED_NO_DECAY),
    HiddenModel("a model whose head starts as a copy of the embedding, in eval mode mid-training (gradients in "
                ".grad)", copied_head_lm, 14, tied=(), unused=(),
                no_decay=("embed.weight", "proj.bias", "ln.weight", "ln.bias", "head.bias")),
    HiddenModel("a model tied through a module holding its embedding, with a noisy router, a frozen part in eval "
                "mode and an unused pooler", routed_lm, 12,
                tied=(("embed.weight", "readout.embedding.weight"),), unused=("pooler.weight", "pooler.bias"),
                no_decay=("embed.weight", "experts.0.bias", "experts.1.bias", "norm.weight", "norm.bias",
                          "pooler.bias", "readout.bias"),
                train_only=("router.w_noise",)),
    HiddenModel("a convolution model with BatchNorm whose output is a function of the embedding, in eval mode",
                conv_lm, 13, tied=(), unused=(), no_decay=("embedding.weight", "conv.bias", "bn.weight", "bn.bias")),
)
