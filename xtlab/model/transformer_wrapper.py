"""Tokens in, logits out: embedding, optional memory tokens, an attention stack and the output projection."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from xtlab._checks import (
    check_bool,
    check_bool_mask,
    check_device,
    check_int,
    check_number,
    check_probability,
    check_type,
)
from xtlab.model.attention_layers import ACCEPTED_KEYWORDS as STACK_KEYWORDS
from xtlab.model.attention_layers import AttentionLayers
from xtlab.model.generate import generate_tokens
from xtlab.model.keywords import TRANSFORMER_WRAPPER_KEYWORDS, refuse_unknown_keywords
from xtlab.model.tied_linear import TiedLinear
from xtlab.model.token_ids import check_token_ids

# every keyword TransformerWrapper takes, for the did-you-mean suggestion of a misspelt one
WRAPPER_KEYWORDS = (
    "num_tokens", "max_seq_len", "attn_layers", "num_memory_tokens", "max_mem_len", "tie_embedding",
    "return_only_embed", "emb_dropout", "tie_embedding_scale",
)


class AbsolutePositionalEmbedding(nn.Module):
    """Learned absolute positions, used only when the stack has no rotary positions.

    Scaled by ``dim ** -0.5`` as in x-transformers: the table starts N(0, 1) like the token table, and the
    scale keeps positions from swamping the token embeddings.
    """

    def __init__(self, dim: int, max_seq_len: int):
        super().__init__()
        self.scale = dim**-0.5
        self.emb = nn.Embedding(max_seq_len, dim)

    def forward(self, n: int, device) -> Tensor:
        return self.emb(torch.arange(n, device=device)) * self.scale  # (n, dim)


class TransformerWrapper(nn.Module):
    """A language model (or an encoder) around an ``AttentionLayers`` stack, named as in x-transformers.

    Args:
        num_tokens: vocabulary size. max_seq_len: longest sequence accepted by forward.
        attn_layers: a ``Decoder`` or ``Encoder``.
        num_memory_tokens: learned tokens prepended to every sequence (``memory_tokens``), stripped from the output.
        max_mem_len: XL memory length kept per attention layer (0: no memories).
        tie_embedding: output projection is a ``TiedLinear`` over ``token_emb``.
        tie_embedding_scale: the tied projection's logit scale (default ``dim ** -0.5``, as x-transformers).
        return_only_embed: no ``to_logits`` at all (an encoder's role); forward returns embeddings.
        emb_dropout: dropout on the token embeddings.

    Any other x-transformers ``TransformerWrapper`` keyword is refused by name (``xtlab.model.keywords``).

    Shape: forward x (b, n) token ids -> logits (b, n, num_tokens), or embeddings (b, n, dim).
    """

    def __init__(self, num_tokens: int, max_seq_len: int, attn_layers: AttentionLayers, *,
                 num_memory_tokens: int = 0, max_mem_len: int = 0, tie_embedding: bool = False,
                 return_only_embed: bool = False, emb_dropout: float = 0.0, tie_embedding_scale: float | None = None,
                 **kwargs):
        super().__init__()
        misplaced = sorted(set(kwargs) & set(STACK_KEYWORDS))
        if misplaced:
            raise TypeError(f"TransformerWrapper got {misplaced[0]!r}, a keyword of the attention stack: pass it to "
                            f"the Decoder or Encoder given as attn_layers")
        refuse_unknown_keywords("TransformerWrapper", kwargs, WRAPPER_KEYWORDS, known=TRANSFORMER_WRAPPER_KEYWORDS)
        check_int("num_tokens", num_tokens, minimum=1)
        check_int("max_seq_len", max_seq_len, minimum=1)
        check_type("attn_layers", attn_layers, AttentionLayers, "an xtlab Decoder or Encoder")
        check_int("num_memory_tokens", num_memory_tokens, minimum=0)
        check_int("max_mem_len", max_mem_len, minimum=0)
        check_probability("emb_dropout", emb_dropout)
        check_bool("tie_embedding", tie_embedding)
        check_bool("return_only_embed", return_only_embed)
        if tie_embedding and return_only_embed:
            raise ValueError("tie_embedding=True needs an output projection, but return_only_embed=True has none")
        dim = attn_layers.dim
        self.num_tokens, self.max_seq_len, self.dim = num_tokens, max_seq_len, dim
        self.max_mem_len, self.num_memory_tokens = max_mem_len, num_memory_tokens
        self.return_only_embed = return_only_embed

        if tie_embedding_scale is not None:
            check_number("tie_embedding_scale", tie_embedding_scale)
            if not tie_embedding:
                raise ValueError("tie_embedding_scale was given but tie_embedding=False, so it would be ignored")
        self.token_emb = nn.Embedding(num_tokens, dim)
        nn.init.kaiming_normal_(self.token_emb.weight)  # x-transformers' TokenEmbedding init: std sqrt(2 / dim)
        self.pos_emb = None if attn_layers.rotary_pos_emb else AbsolutePositionalEmbedding(dim, max_seq_len)
        if num_memory_tokens > 0:
            self.memory_tokens = nn.Parameter(torch.randn(num_memory_tokens, dim))
        self.emb_dropout = nn.Dropout(emb_dropout)
        self.attn_layers = attn_layers
        if return_only_embed:
            self.to_logits = None
        elif tie_embedding:
            scale = dim**-0.5 if tie_embedding_scale is None else float(tie_embedding_scale)
            self.to_logits = TiedLinear(self.token_emb, scale=scale)
        else:
            self.to_logits = nn.Linear(dim, num_tokens, bias=False)

    @property
    def skipped_blocks(self) -> list[str]:
        """Qualified names of the blocks layer dropout skipped in the last forward pass."""
        return [f"attn_layers.layers.{i}" for i in self.attn_layers.last_skipped]

    def forward(self, x: Tensor, *, mask: Tensor | None = None, mems: list[Tensor] | None = None,
                mem_masks: Tensor | list[Tensor] | None = None, return_mems: bool = False,
                return_embeddings: bool = False, context: Tensor | None = None,
                context_mask: Tensor | None = None):
        """Args:
            x: (b, n) token ids in [0, num_tokens). mask: (b, n) bool, True for real tokens.
            mems: one (b, M, dim) memory per attention layer, as returned by a previous call.
            mem_masks: (b, M) bool (or one per layer): which memory slots may be attended.
            return_mems: also return the new memories (needs max_mem_len > 0).
            return_embeddings: return the final normalised hidden states instead of logits.
            context, context_mask: (b, S, dim) and (b, S) for a cross-attending decoder.

        Returns: logits (b, n, num_tokens) or embeddings (b, n, dim); with return_mems, ``(out, mems)``.
        """
        b, n = self.check_tokens(x)
        if mask is not None:
            check_bool_mask("mask", mask, (b, n))
            check_device("mask", mask, x.device)
        check_bool("return_mems", return_mems)
        check_bool("return_embeddings", return_embeddings)
        if return_mems and self.max_mem_len == 0:
            raise ValueError("return_mems=True needs memories, but max_mem_len=0: build the model with "
                             "max_mem_len > 0 (xtlab does not keep unbounded memories)")

        h = self.token_emb(x)  # (b, n, dim)
        if self.pos_emb is not None:
            h = h + self.pos_emb(n, x.device)
        h = self.emb_dropout(h)
        m = self.num_memory_tokens
        if m > 0:
            h = torch.cat((self.memory_tokens.expand(b, -1, -1), h), dim=1)  # (b, m + n, dim)
            if mask is not None:
                mask = torch.cat((torch.ones(b, m, dtype=torch.bool, device=mask.device), mask), dim=1)

        out = self.attn_layers(h, mask=mask, mems=mems, mem_masks=mem_masks, context=context,
                               context_mask=context_mask, return_mems=return_mems,
                               max_mem_len=self.max_mem_len, record_from=m)
        h, new_mems = out if return_mems else (out, None)
        h = h[:, m:]  # strip memory tokens
        if not (return_embeddings or self.return_only_embed):
            h = self.to_logits(h)
        return (h, new_mems) if return_mems else h

    def check_tokens(self, x, name: str = "x") -> tuple[int, int]:
        """(b, n) integer token ids in [0, num_tokens) on the model's device, n <= max_seq_len; returns (b, n)."""
        check_token_ids(name, x, self.num_tokens, self.token_emb.weight.device)
        b, n = x.shape
        if n > self.max_seq_len:
            raise ValueError(f"sequence length {n} exceeds max_seq_len={self.max_seq_len}")
        return b, n

    @torch.no_grad()
    def generate(self, prompts: Tensor, seq_len: int, *, temperature: float = 0.0, context: Tensor | None = None,
                 context_mask: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
        """Continue ``prompts`` (b, n) by ``seq_len`` tokens; greedy when temperature is 0. Returns (b, seq_len)."""
        if self.to_logits is None or self.return_only_embed:
            raise ValueError("generate needs logits, but this model was built with return_only_embed=True")
        return generate_tokens(self, prompts, seq_len, temperature=temperature, context=context,
                               context_mask=context_mask, generator=generator)

    def extra_repr(self) -> str:
        return (f"num_tokens={self.num_tokens}, max_seq_len={self.max_seq_len}, "
                f"num_memory_tokens={self.num_memory_tokens}, max_mem_len={self.max_mem_len}")
