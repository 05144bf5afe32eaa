"""Lab 03, empty memories: ``mems=None`` against all-zero memories, and which memory slots a mask must hide.

An all-zero memory slot is still a key unless a mask hides it: its key vector is zero, it scores 0 against every
query and takes softmax weight from the real keys. A memory mask is judged by the invariant: each batch row must
give the logits it would give with exactly its real memory (none, all, or the filled part of a half-empty buffer).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from xtlab._checks import check_callable, check_int
from xtlab.labs.xl_rotary.models import DEPTH, DIM, build_xl_model, example_tokens
from xtlab.model import TransformerWrapper
from xtlab.threads import one_cpu_thread


def slot_mask(mem: Tensor) -> Tensor:
    """(b, M) bool: True for a slot that holds something (not all zero). xtlab's rule for ``mask_empty_mems``."""
    return mem.abs().amax(dim=-1) > 0


def whole_tensor_flag(mem: Tensor) -> Tensor:
    """The article's rule, ``torch.any(mem)``: one flag for every slot of every row, broadcast to (b, M)."""
    return torch.any(mem).expand(mem.shape[:2])


def attend_everything(mem: Tensor) -> Tensor:
    """No mask at all: every slot attended, (b, M) of True."""
    return torch.ones(mem.shape[:2], dtype=torch.bool, device=mem.device)


MASK_RULES: dict[str, Callable[[Tensor], Tensor]] = {
    "per slot: hide all-zero slots": slot_mask,
    "one flag for the whole tensor: torch.any(mem)": whole_tensor_flag,
    "no mask": attend_everything,
}


@dataclass(frozen=True)
class EmptyMemories:
    """``mems=None`` against M all-zero memory slots per layer, with the slot mask and without any mask.

    Attributes:
        max_abs_diff: {"mask on": x, "mask off": y} over the logits.
        weights: {"none": (T, T), "mask on": (T, M + T), "mask off": (T, M + T)} attention weights of the first
            attention layer, averaged over heads.
        memory_weight: {"mask on": x, "mask off": y} total weight the queries give to memory columns (mean over
            queries).
        weights_reproduce_layer: the weights, times the values, give the layer's own output (checked to 1e-10).
    """

    num_mems: int
    seq_len: int
    max_abs_diff: dict[str, float]
    weights: dict[str, np.ndarray]
    memory_weight: dict[str, float]
    weights_reproduce_layer: bool


def attention_weights(model: TransformerWrapper, tokens: Tensor, mems: list[Tensor] | None,
                      mem_masks: list[Tensor] | None = None) -> tuple[Tensor, bool]:
    """Softmax weights of the first self-attention layer, from the model's own modules.

    SDPA does not return its weights, so this asks the layer for them (``SelfAttention.attention_weights``) and
    checks that they reproduce the layer's output.

    Returns: (weights (b, h, T, M + T), reproduces: bool).
    """
    layers = model.attn_layers
    block = layers.layers[0]
    attn = block.fn
    x = model.token_emb(tokens)  # rotary model: no absolute positions
    b, t, _ = x.shape
    normed = block.norm(x)
    mem = mems[0] if mems is not None else None
    key_mask = layers.key_mask(mem, None if mem_masks is None else mem_masks[0], None, b, t)
    weights = attn.attention_weights(normed, mem, key_mask)
    _, _, v = attn.project(normed, mem)
    out = attn.to_out((weights @ v).transpose(1, 2).reshape(b, t, -1))
    reference = attn(normed, mem=mem, key_mask=key_mask)
    return weights, bool(torch.allclose(out, reference, atol=1e-10, rtol=0))


def empty_memories(num_mems: int = 4, seq_len: int = 8) -> EmptyMemories:
    """Compare ``mems=None`` with M all-zero slots per layer: slot mask on (the fix) and no mask (the bug)."""
    check_int("num_mems", num_mems, minimum=1)
    check_int("seq_len", seq_len, minimum=1)
    tokens = example_tokens(seq_len)
    zeros = [torch.zeros(1, num_mems, DIM, dtype=torch.float64) for _ in range(DEPTH)]
    model = build_xl_model()
    diffs, weights, memory_weight = {}, {}, {}
    with torch.no_grad(), one_cpu_thread():
        base = model(tokens)
        w, ok = attention_weights(model, tokens, None)
        weights["none"], reproduce = w[0].mean(0).numpy(), [ok]
        for label, rule in (("mask on", slot_mask), ("mask off", attend_everything)):
            masks = [rule(z) for z in zeros]
            diffs[label] = (model(tokens, mems=zeros, mem_masks=masks) - base).abs().max().item()
            w, ok = attention_weights(model, tokens, zeros, masks)
            weights[label] = w[0].mean(0).numpy()
            memory_weight[label] = float(w[0, :, :, :num_mems].sum(-1).mean())
            reproduce.append(ok)
    return EmptyMemories(num_mems, seq_len, diffs, weights, memory_weight, all(reproduce))


MASK_ROWS = ("fresh row: all-zero memory", "continuing row: full memory", "half-filled buffer: zeros, then memory")


def mask_rows_gap(memory_mask: Callable[[Tensor], Tensor], num_mems: int = 6, seq_len: int = 6,
                  padding: int = 2) -> dict[str, float]:
    """Run one batch of three rows with memories masked by ``memory_mask`` and compare each row with its reference.

    Rows (see ``MASK_ROWS``): a fresh sequence with M all-zero slots (reference: ``mems=None``); a continuing one
    whose memory holds its previous M tokens (reference: one full pass); one whose buffer holds ``padding`` zero
    slots, then the memory of its previous M - padding tokens (reference: one full pass over those). Every rule
    is applied per layer to that layer's (3, M, dim) memory, with xtlab's own empty-slot rule off.

    Returns: row -> max |logits - reference| of that row.
    """
    check_callable("memory_mask", memory_mask)
    check_int("num_mems", num_mems, minimum=2)
    check_int("seq_len", seq_len, minimum=1)
    check_int("padding", padding, minimum=1, maximum=num_mems - 1)
    model = build_xl_model(mask_empty_mems=False)
    current = example_tokens(seq_len, seed=2, batch=3)
    previous = example_tokens(num_mems, seed=3, batch=3)
    with torch.no_grad(), one_cpu_thread():
        _, full_mems = model(previous[1:2], return_mems=True)
        _, part_mems = model(previous[2:3, padding:], return_mems=True)
        mems = [torch.cat((torch.zeros_like(full), full,
                           torch.cat((torch.zeros(1, padding, DIM, dtype=full.dtype), part), dim=1)), dim=0)
                for full, part in zip(full_mems, part_mems, strict=True)]
        masks = [memory_mask(mem) for mem in mems]
        logits = model(current, mems=mems, mem_masks=masks)
        references = (model(current[0:1]),
                      model(torch.cat((previous[1:2], current[1:2]), dim=1))[:, num_mems:],
                      model(torch.cat((previous[2:3, padding:], current[2:3]), dim=1))[:, num_mems - padding:])
    return {row: (logits[i:i + 1] - ref).abs().max().item() for i, (row, ref) in enumerate(zip(MASK_ROWS, references,
                                                                                                strict=True))}
