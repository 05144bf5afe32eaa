"""TinyLM: a small GPT-style language model written in another style than the course's (its own names, a tie
by assignment, block dropout called ``block_drop``), the architecture the learner adapts to the audit.

Two switches plant bugs: ``leak=True`` lets each token attend to the next one (a causal mask off by one) and
``value_head=True`` keeps a head the forward pass never uses. Everything an adapter needs is at module level.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from xtlab._checks import check_bool, check_int, check_probability, check_type
from xtlab.diagnostics.model_audit import ModelAdapter

NUM_TOKENS, MAX_LEN, DIM, DEPTH, HEADS = 32, 16, 32, 2, 2


class TinyBlock(nn.Module):
    """Pre-norm attention (``nn.MultiheadAttention``) and MLP, each added to the residual stream."""

    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim), nn.Dropout(dropout))

    def forward(self, x: Tensor, blocked: Tensor) -> Tensor:
        h = self.ln1(x)
        x = x + self.attn(h, h, h, attn_mask=blocked, need_weights=False)[0]
        return x + self.mlp(self.ln2(x))


class TinyLM(nn.Module):
    """Token ids (b, n) -> logits (b, n, num_tokens).

    Args:
        num_tokens, max_len, dim, depth, heads: sizes. dropout: inside attention and MLP.
        block_drop: probability of skipping each block in training (drawn from torch's generator).
        leak: planted bug, the causal mask lets token t see token t + 1.
        value_head: planted bug, a head that forward never uses.
    """

    def __init__(self, num_tokens: int = NUM_TOKENS, max_len: int = MAX_LEN, dim: int = DIM, depth: int = DEPTH,
                 heads: int = HEADS, *, dropout: float = 0.1, block_drop: float = 0.2, leak: bool = False,
                 value_head: bool = False):
        super().__init__()
        for name, value in (("num_tokens", num_tokens), ("max_len", max_len), ("dim", dim), ("depth", depth),
                            ("heads", heads)):
            check_int(name, value, minimum=1)
        if dim % heads:
            raise ValueError(f"dim must be divisible by heads, but got dim={dim}, heads={heads}")
        check_probability("dropout", dropout)
        self.block_drop = check_probability("block_drop", block_drop)
        self.leak, self.num_tokens, self.max_len = check_bool("leak", leak), num_tokens, max_len
        check_bool("value_head", value_head)
        self.embed = nn.Embedding(num_tokens, dim)
        self.pos = nn.Parameter(0.02 * torch.randn(max_len, dim))
        self.blocks = nn.ModuleList(TinyBlock(dim, heads, dropout) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_tokens, bias=False)
        self.head.weight = self.embed.weight  # tied by assignment
        self.value_head = nn.Linear(dim, 1) if value_head else None
        self.last_skipped: tuple[int, ...] = ()

    def forward(self, tokens: Tensor) -> Tensor:
        check_type("tokens", tokens, Tensor, "a (batch, n) tensor of token ids")
        n = tokens.shape[1]
        if n > self.max_len:
            raise ValueError(f"sequence length {n} exceeds max_len={self.max_len}")
        x = self.embed(tokens) + self.pos[:n]
        blocked = torch.ones(n, n, dtype=torch.bool, device=tokens.device).triu(2 if self.leak else 1)
        skipped = []
        for index, block in enumerate(self.blocks):
            if self.training and self.block_drop > 0 and float(torch.rand(())) < self.block_drop:
                skipped.append(index)
                continue
            x = block(x, blocked)
        self.last_skipped = tuple(skipped)
        return self.head(self.norm(x))


def build_tiny_lm(seed: int = 0, **kwargs) -> TinyLM:
    """A TinyLM with torch seeded by ``seed`` first (the same seed gives the same weights)."""
    check_int("seed", seed, minimum=0)
    generator_state = torch.get_rng_state()
    torch.manual_seed(seed)
    try:
        return TinyLM(**kwargs)
    finally:
        torch.set_rng_state(generator_state)


# --- the reference adapter (what the exercise asks the learner to write) -----------------------------------------

def tiny_lm_batch(model: nn.Module, generator: torch.Generator) -> tuple[Tensor]:
    tokens = torch.randint(0, model.num_tokens, (2, model.max_len), generator=generator)
    return (tokens.to(model.embed.weight.device),)


def tiny_lm_forward(model: nn.Module, batch: tuple[Tensor]) -> Tensor:
    return model(batch[0])


def tiny_lm_loss(model: nn.Module, batch: tuple[Tensor]) -> Tensor:
    tokens = batch[0]
    logits = model(tokens[:, :-1])
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1))


def tiny_lm_get_block_drop(model: nn.Module) -> float:
    return model.block_drop


def tiny_lm_set_block_drop(model: nn.Module, p: float) -> None:
    model.block_drop = p


def tiny_lm_adapter(model: nn.Module) -> ModelAdapter:
    """The adapter for :class:`TinyLM`: next-token loss, ``embed``/``head`` pair, ``block_drop``, no memories."""
    check_type("model", model, TinyLM, "a TinyLM")
    return ModelAdapter("TinyLM", tiny_lm_batch, tiny_lm_loss, tiny_lm_forward, embedding="embed", output="head",
                        get_layer_dropout=tiny_lm_get_block_drop, set_layer_dropout=tiny_lm_set_block_drop)
