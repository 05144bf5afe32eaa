"""The installed x-transformers, at the lab's sizes: its version against the fix (1.35.2), its encoder's
``to_logits``, its parameter count next to xtlab's, and what the unused-parameter finder says about it."""

from __future__ import annotations

import importlib.metadata
import re
from dataclasses import dataclass

from xtlab._checks import check_str
from xtlab.diagnostics.unused_parameters import find_unused_parameters
from xtlab.labs.encoder_decoder_ddp.experiments import build_seq2seq_model, seq2seq_batch, seq2seq_loss
from xtlab.seeding import seed_everything
from xtlab.threads import one_cpu_thread

FIX_VERSION = "1.35.2"  # the release that removed the encoder's to_logits, per the article


def version_tuple(version: str) -> tuple[int, ...]:
    """``"2.31.10"`` -> ``(2, 31, 10)``: the leading dotted numbers of a version string.

    Raises:
        TypeError: not a str. ValueError: no leading number.
    """
    check_str("version", version)
    found = re.match(r"\d+(?:\.\d+)*", version.strip())
    if not found:
        raise ValueError(f"version must start with a number, like '1.35.2', but got {version!r}")
    return tuple(int(part) for part in found.group(0).split("."))


@dataclass(frozen=True)
class LibraryComparison:
    """x-transformers' encoder–decoder next to xtlab's, built at the same sizes.

    Attributes:
        version: installed x-transformers. has_fix: ``version >= FIX_VERSION``.
        encoder_to_logits: the type name of the library encoder's ``to_logits`` attribute.
        library_params / xtlab_params: parameter counts. unused: parameters the finder names in the library model.
    """

    version: str
    has_fix: bool
    encoder_to_logits: str
    library_params: int
    xtlab_params: int
    unused: tuple[str, ...]


def compare_with_library(dim: int = 32, depth: int = 1, heads: int = 2) -> LibraryComparison:
    """Build x-transformers' ``XTransformer`` with the sizes of ``build_seq2seq_model(dim, depth, heads)`` (head
    width ``dim // heads`` passed explicitly) and run the finder on it with the lab's batch."""
    # imported here, not at the top: every DDP rank imports this package, and x-transformers costs each a second
    from x_transformers import XTransformer as LibraryXTransformer

    ours = build_seq2seq_model(dim=dim, depth=depth, heads=heads)
    vocab, length = ours.encoder.token_emb.weight.shape[0], ours.encoder.max_seq_len
    seed_everything(0)
    library = LibraryXTransformer(
        dim=dim, enc_num_tokens=vocab, enc_depth=depth, enc_heads=heads, enc_max_seq_len=length,
        enc_attn_dim_head=dim // heads, dec_num_tokens=vocab, dec_depth=depth, dec_heads=heads,
        dec_max_seq_len=length + 1, dec_attn_dim_head=dim // heads)
    with one_cpu_thread():
        unused = tuple(p.name for p in find_unused_parameters(library, seq2seq_loss, seq2seq_batch()))
    version = importlib.metadata.version("x-transformers")
    return LibraryComparison(version, version_tuple(version) >= version_tuple(FIX_VERSION),
                             type(getattr(library.encoder, "to_logits", None)).__name__,
                             sum(p.numel() for p in library.parameters()), sum(p.numel() for p in ours.parameters()),
                             unused)
