"""An encoder–decoder in the style of x-transformers' ``XTransformer`` (``enc_``/``dec_`` prefixed arguments).

The encoder is a ``TransformerWrapper(return_only_embed=True)``: it owns no ``to_logits``. The teaching
switch ``encoder_keeps_logits=True`` recreates the old bug — an encoder ``to_logits`` its forward never
uses, which breaks DistributedDataParallel without ``find_unused_parameters=True``.

An x-transformers keyword xtlab does not model (``cross_attn_tokens_dropout``, ``ignore_index``,
``pad_value``, ``enc_attn_qk_norm``, ...) is refused by name, as ``Decoder`` refuses its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from xtlab._checks import check_bool, check_bool_mask, check_int, check_tensor
from xtlab.model.attention_layers import ACCEPTED_KEYWORDS as STACK_KEYWORDS
from xtlab.model.attention_layers import Decoder, Encoder
from xtlab.model.keywords import refuse_unknown_keywords, xtransformer_keywords
from xtlab.model.tied_linear import TiedLinear
from xtlab.model.token_ids import check_token_ids
from xtlab.model.transformer_wrapper import TransformerWrapper

WRAPPER_ARGS = ("num_memory_tokens", "max_mem_len", "tie_embedding", "tie_embedding_scale", "emb_dropout")
OWN_KEYWORDS = ("dim", "tie_token_emb", "encoder_keeps_logits")
# every keyword XTransformer takes, for the did-you-mean suggestion of a misspelt one
ACCEPTED_KEYWORDS = OWN_KEYWORDS + tuple(
    prefix + name for prefix in ("enc_", "dec_")
    for name in ("num_tokens", "max_seq_len", *WRAPPER_ARGS,
                 *(k for k in STACK_KEYWORDS if k not in ("dim", "causal"))))


def _split_prefixed(kwargs: dict, prefix: str) -> tuple[dict, dict]:
    """``{prefix + name: v}`` -> (wrapper kwargs, attention-layer kwargs)."""
    wrapper, layers = {}, {}
    for key, value in kwargs.items():
        if key.startswith(prefix):
            name = key[len(prefix):]
            (wrapper if name in WRAPPER_ARGS else layers)[name] = value
    return wrapper, layers


class XTransformer(nn.Module):
    """Encoder–decoder: the decoder cross-attends to the encoder's output.

    Args:
        dim: shared width. enc_num_tokens, enc_depth, enc_heads (8), enc_max_seq_len: the encoder.
        dec_num_tokens, dec_depth, dec_heads (8), dec_max_seq_len: the decoder.
        tie_token_emb: the decoder embeds with the encoder's ``token_emb`` (as x-transformers: one Parameter,
            listed in the state dict under both names); needs ``enc_num_tokens == dec_num_tokens``.
        encoder_keeps_logits: teaching bug — the encoder owns a ``to_logits`` that forward never uses.
        **kwargs: more ``enc_``/``dec_`` prefixed arguments (e.g. ``enc_rotary_pos_emb=True``,
            ``dec_layer_dropout=0.1``, ``dec_tie_embedding=True``).

    Shape: forward src (b, S), tgt (b, T) -> scalar loss on predicting tgt[:, 1:] from tgt[:, :-1].
    """

    def __init__(self, *, dim: int, enc_num_tokens: int, enc_depth: int, enc_max_seq_len: int,
                 dec_num_tokens: int, dec_depth: int, dec_max_seq_len: int, enc_heads: int = 8, dec_heads: int = 8,
                 tie_token_emb: bool = False, encoder_keeps_logits: bool = False, **kwargs):
        super().__init__()
        refuse_unknown_keywords("XTransformer", set(kwargs) - set(ACCEPTED_KEYWORDS), ACCEPTED_KEYWORDS,
                                known=xtransformer_keywords(),
                                note=f"XTransformer's own keywords are {', '.join(OWN_KEYWORDS)}; every other one "
                                     f"starts with 'enc_' (the encoder) or 'dec_' (the decoder)")
        check_int("dim", dim, minimum=1)
        for name, value in (("enc_num_tokens", enc_num_tokens), ("enc_depth", enc_depth), ("enc_heads", enc_heads),
                            ("enc_max_seq_len", enc_max_seq_len), ("dec_num_tokens", dec_num_tokens),
                            ("dec_depth", dec_depth), ("dec_heads", dec_heads), ("dec_max_seq_len", dec_max_seq_len)):
            check_int(name, value, minimum=1)
        check_bool("encoder_keeps_logits", encoder_keeps_logits)
        if check_bool("tie_token_emb", tie_token_emb) and enc_num_tokens != dec_num_tokens:
            raise ValueError(f"tie_token_emb=True shares one embedding, so enc_num_tokens and dec_num_tokens must be "
                             f"equal, but got {enc_num_tokens} and {dec_num_tokens}")
        if "dec_cross_attend" in kwargs and check_bool("dec_cross_attend", kwargs["dec_cross_attend"]) is False:
            raise ValueError("dec_cross_attend=False would cut the decoder off from the encoder; leave it out")
        kwargs.pop("dec_cross_attend", None)
        enc_wrapper, enc_layers = _split_prefixed(kwargs, "enc_")
        dec_wrapper, dec_layers = _split_prefixed(kwargs, "dec_")
        if check_bool("enc_tie_embedding", enc_wrapper.pop("tie_embedding", False)):
            raise ValueError("enc_tie_embedding=True makes no sense: the encoder has no output projection")
        with _prefixed_errors("enc_"):
            self.encoder = TransformerWrapper(enc_num_tokens, enc_max_seq_len, Encoder(dim, enc_depth, enc_heads,
                                              **enc_layers), return_only_embed=True, **enc_wrapper)
        self.encoder_keeps_logits = bool(encoder_keeps_logits)
        if encoder_keeps_logits:
            self.encoder.to_logits = nn.Linear(dim, enc_num_tokens, bias=False)  # the bug: never used
        with _prefixed_errors("dec_"):
            self.decoder = TransformerWrapper(dec_num_tokens, dec_max_seq_len, Decoder(dim, dec_depth, dec_heads,
                                              cross_attend=True, **dec_layers), **dec_wrapper)
        self.tie_token_emb = tie_token_emb
        if tie_token_emb:
            self.decoder.token_emb = self.encoder.token_emb
            if isinstance(self.decoder.to_logits, TiedLinear):  # follow the embedding it now reads
                self.decoder.to_logits = TiedLinear(self.encoder.token_emb, scale=self.decoder.to_logits.scale)

    def encode(self, src: Tensor, mask: Tensor | None = None) -> Tensor:
        """(b, S) -> (b, S, dim) encoder output."""
        return self.encoder(src, mask=mask)

    def forward(self, src: Tensor, tgt: Tensor, *, mask: Tensor | None = None) -> Tensor:
        """Teacher-forced next-token cross-entropy of ``tgt`` given ``src``; ``mask`` (b, S) marks real src tokens."""
        check_tensor("tgt", tgt)
        if tgt.dim() != 2 or tgt.shape[1] < 2:
            raise ValueError(f"tgt must have shape (batch, T >= 2) (a start token then targets), "
                             f"but got {tuple(tgt.shape)}")
        # the last target never enters the decoder, so its range is checked here, not by the decoder
        check_token_ids("tgt", tgt, self.decoder.num_tokens, self.decoder.token_emb.weight.device)
        self._check_batches(src, tgt, mask, "tgt")
        encoded = self.encode(src, mask)
        logits = self.decoder(tgt[:, :-1], context=encoded, context_mask=mask)  # (b, T-1, vocab)
        return F.cross_entropy(logits.transpose(1, 2), tgt[:, 1:])

    @torch.no_grad()
    def generate(self, src: Tensor, start_tokens: Tensor, seq_len: int, *, mask: Tensor | None = None,
                 temperature: float = 0.0) -> Tensor:
        """Decode ``seq_len`` tokens after ``start_tokens`` (b, n) given ``src``. Returns (b, seq_len)."""
        self._check_batches(src, start_tokens, mask, "start_tokens")
        was_training = self.training
        self.eval()
        try:
            encoded = self.encode(src, mask)
            return self.decoder.generate(start_tokens, seq_len, temperature=temperature, context=encoded,
                                         context_mask=mask)
        finally:
            self.train(was_training)

    def _check_batches(self, src, tokens, mask, name: str) -> None:
        """src (and mask) and the decoder's ``tokens`` must describe one batch: cross-attention pairs their rows."""
        self.encoder.check_tokens(src, "src")
        if mask is not None:
            check_bool_mask("mask", mask, tuple(src.shape))
        check_tensor(name, tokens)
        if tokens.dim() >= 1 and tokens.shape[0] != src.shape[0]:
            raise ValueError(f"src and {name} must have the same batch size, but got src {tuple(src.shape)} and "
                             f"{name} {tuple(tokens.shape)}")


@contextmanager
def _prefixed_errors(prefix: str) -> Iterator[None]:
    """Re-raise a TypeError/ValueError from the encoder or decoder with its argument prefix, so that
    ``enc_layer_dropout=2`` is reported under that name, not only as a bare ``layer_dropout``."""
    try:
        yield
    except (TypeError, ValueError) as error:
        if type(error) not in (TypeError, ValueError):
            raise
        raise type(error)(f"{prefix} arguments: {error}") from error
