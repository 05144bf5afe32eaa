"""Lab 03, the segmented pass a trainer runs: segment by segment, with per-layer memories it keeps itself.

``SegmentRunner`` runs the lab's rotary decoder on one segment, given each layer's memory and the rotary positions
of the keys ``[memory ; current]``; it returns the segment's logits and the residual stream entering each attention
layer. Everything else (the loop, the memory update, the positions) is the caller's: the exercise
``segmented_pass`` writes it, and ``reference_segmented`` is the library's own loop to judge it by.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from xtlab._checks import check_int, check_type
from xtlab.model import TransformerWrapper
from xtlab.model.attention_layers import update_memory
from xtlab.model.rotary import rotate_leading


class SegmentRunner:
    """``run_segment(segment, mems, positions) -> (logits, hiddens)`` for one rotary XL decoder.

    Args (of a call):
        segment: (b, T) token ids.
        mems: None, or one (b, M, dim) memory per attention layer (the same M for all), used by attention as is.
        positions: the M + T rotary positions of the keys ``[memory ; current]`` (a list or a 1-D integer tensor);
            queries take the last T.

    Returns: logits (b, T, num_tokens) and hiddens, one (b, T, dim) per attention layer: the residual stream
    entering it, before its pre-norm. ``run_segment.norm(k, hidden)`` applies layer k's pre-norm.

    Every call is recorded in ``calls`` (what was passed, what came back), for checkers.
    """

    def __init__(self, model: TransformerWrapper):
        check_type("model", model, TransformerWrapper, "an xtlab TransformerWrapper (build_xl_model)")
        layers = model.attn_layers
        if model.pos_emb is not None or model.num_memory_tokens or not layers.rotary_pos_emb or not layers.causal:
            raise ValueError("SegmentRunner needs a causal rotary model without memory tokens (build_xl_model)")
        self.model = model
        self.attn_blocks = [block for block in layers.layers if block.kind == "attn"]
        self.num_layers = len(self.attn_blocks)
        self.calls: list[dict] = []

    def norm(self, k: int, hidden: Tensor) -> Tensor:
        """Layer k's pre-norm applied to ``hidden`` (b, T, dim)."""
        check_int("k", k, minimum=0, maximum=self.num_layers - 1)
        return self.attn_blocks[k].norm(hidden)

    def _check(self, segment, mems, positions) -> tuple[list[Tensor] | None, Tensor]:
        self.model.check_tokens(segment, "segment")
        b, t = segment.shape
        if mems is not None:
            check_type("mems", mems, (list, tuple), f"None or a list of {self.num_layers} memories")
            if len(mems) != self.num_layers:
                raise ValueError(f"mems must hold one memory per attention layer ({self.num_layers}), "
                                 f"but got {len(mems)}")
            lengths = set()
            for k, mem in enumerate(mems):
                check_type(f"mems[{k}]", mem, Tensor, "a (b, M, dim) tensor")
                if mem.dim() != 3 or mem.shape[0] != b or mem.shape[2] != self.model.attn_layers.dim:
                    raise ValueError(f"mems[{k}] must have shape (b={b}, M, dim={self.model.attn_layers.dim}), "
                                     f"but got {tuple(mem.shape)}")
                lengths.add(mem.shape[1])
            if len(lengths) > 1:
                raise ValueError(f"every layer's memory must have the same length M, but got {sorted(lengths)}")
        m = 0 if mems is None else mems[0].shape[1]
        if isinstance(positions, Tensor):
            if positions.dim() != 1 or positions.is_floating_point() or positions.dtype == torch.bool:
                raise ValueError(f"positions must be a 1-D integer tensor, but got {positions.dtype} of shape "
                                 f"{tuple(positions.shape)}")
            positions = positions.detach().cpu().to(torch.long)
        elif isinstance(positions, (list, tuple, range)) and all(
                isinstance(p, int) and not isinstance(p, bool) for p in positions):
            positions = torch.tensor(list(positions), dtype=torch.long)
        else:
            raise ValueError(f"positions must be a list of ints or a 1-D integer tensor, but got "
                             f"{type(positions).__name__}")
        if positions.numel() != m + t:
            raise ValueError(f"positions must give the M + T = {m} + {t} = {m + t} keys one position each, "
                             f"but got {positions.numel()}")
        return (None if mems is None else list(mems)), positions

    def __call__(self, segment: Tensor, mems: list[Tensor] | None, positions) -> tuple[Tensor, list[Tensor]]:
        mems, positions = self._check(segment, mems, positions)
        model, layers = self.model, self.model.attn_layers
        x = model.token_emb(segment)
        b, t, _ = x.shape
        hiddens, k = [], 0
        for block in layers.layers:
            if block.kind != "attn":
                x = x + block.fn(block.norm(x))
                continue
            hiddens.append(x)
            mem = None if mems is None else mems[k]
            x = x + self._attend(block.fn, block.norm(x), mem, positions)
            k += 1
        logits = model.to_logits(layers.final_norm(x))
        self.calls.append({"segment": segment, "mems": mems, "positions": positions.tolist(),
                           "embedded": hiddens[0], "hiddens": hiddens, "logits": logits})
        return logits, hiddens

    @staticmethod
    def _attend(attn, normed: Tensor, mem: Tensor | None, positions: Tensor) -> Tensor:
        """``attn`` over ``[mem ; normed]`` with the given key positions, causal over the current tokens."""
        b, t, _ = normed.shape
        m = 0 if mem is None else mem.shape[1]
        w_q, w_kv = attn.to_qkv.weight.split((attn.inner, 2 * attn.inner))
        q = F.linear(normed, w_q).view(b, t, attn.heads, attn.dim_head).transpose(1, 2)
        keys = normed if mem is None else torch.cat((mem, normed), dim=1)
        k, v = F.linear(keys, w_kv).view(b, m + t, 2, attn.heads, attn.dim_head).permute(2, 0, 3, 1, 4)
        angles = attn.rotary(positions.to(normed.device))
        cos, sin = angles.cos().to(normed.dtype), angles.sin().to(normed.dtype)
        k, q = rotate_leading(k, cos, sin), rotate_leading(q, cos[m:], sin[m:])
        allowed = attn.attention_mask(b, t, m, None, normed.device)
        dropout = attn.dropout if attn.training else 0.0
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, dropout_p=dropout)
        return attn.to_out(out.transpose(1, 2).reshape(b, t, attn.inner))


def reference_segmented(model: TransformerWrapper, tokens: Tensor, segment_len: int, max_mem_len: int) -> Tensor:
    """The library's own segmented pass: logits (b, n, num_tokens) of ``tokens`` run ``segment_len`` at a time,
    each layer keeping the last ``max_mem_len`` normed states (none at 0)."""
    check_int("segment_len", segment_len, minimum=1)
    check_int("max_mem_len", max_mem_len, minimum=0)
    layers, outputs, mems = model.attn_layers, [], None
    for start in range(0, tokens.shape[1], segment_len):
        x = model.token_emb(tokens[:, start:start + segment_len])
        x, mems = layers(x, mems=mems, return_mems=True, max_mem_len=max_mem_len)
        outputs.append(model.to_logits(x))
    return torch.cat(outputs, dim=1)


def solution_segmented_pass(run_segment: SegmentRunner, tokens: Tensor, segment_len: int,
                            max_mem_len: int) -> Tensor:
    """The exercise's reference answer."""
    mems, outputs = None, []
    for start in range(0, tokens.shape[1], segment_len):
        segment = tokens[:, start:start + segment_len]
        num_mems = 0 if mems is None else mems[0].shape[1]
        logits, hiddens = run_segment(segment, mems, torch.arange(-num_mems, segment.shape[1]))
        outputs.append(logits)
        mems = [update_memory(None if mems is None else mems[k], run_segment.norm(k, hidden), max_mem_len)
                for k, hidden in enumerate(hiddens)]
    return torch.cat(outputs, dim=1)
