"""The stack of residual blocks: ``Decoder`` (causal) and ``Encoder`` (bidirectional).

It owns the two behaviours the labs study most closely:
- layer dropout (stochastic depth): in training each block is skipped with probability ``layer_dropout``;
  a skipped block is an identity on the residual stream, so its parameters get no gradient;
- XL memories: each self-attention layer attends over ``[its memory ; current]`` and returns its new memory,
  even when skipped, so layer k always receives layer k's memory.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from xtlab._checks import (
    check_bool,
    check_bool_mask,
    check_choice,
    check_device,
    check_dtype,
    check_int,
    check_probability,
    check_tensor,
    check_type,
)
from xtlab.model.attention import (
    DEFAULT_DIM_HEAD,
    CrossAttention,
    SelfAttention,
    check_attention_sizes,
    check_rotary_dim,
    check_stream,
)
from xtlab.model.block import Block
from xtlab.model.feedforward import FeedForward, check_ff_mult
from xtlab.model.keywords import refuse_unknown_keywords
from xtlab.model.norms import make_norm
from xtlab.model.rotary import MEM_POSITION_MODES

MEM_RECORD_STAGES = ("normed", "residual")


def update_memory(mem: Tensor | None, recorded: Tensor, max_mem_len: int) -> Tensor:
    """One layer's next memory: the last ``max_mem_len`` positions of ``[mem ; recorded]``, detached.

    ``max_mem_len=0`` keeps nothing (a slice ``[:, -max_mem_len:]`` would keep everything, since ``-0 == 0``).

    Shape: mem (b, M, dim) or None, recorded (b, T, dim) -> (b, min(M + T, max_mem_len), dim).
    """
    check_int("max_mem_len", max_mem_len, minimum=0)
    both = recorded if mem is None else torch.cat((mem, recorded), dim=1)
    return both[:, both.shape[1] - min(max_mem_len, both.shape[1]):].detach()

# every keyword AttentionLayers takes, for the did-you-mean suggestion of a misspelt one
ACCEPTED_KEYWORDS = (
    "dim", "depth", "heads", "causal", "rotary_pos_emb", "rotary_emb_dim", "attn_dim_head", "layer_dropout",
    "cross_attend", "attn_num_mem_kv", "use_rmsnorm", "use_scalenorm", "norm_add_unit_offset", "norm_unit_offset",
    "pre_norm_has_final_norm", "attn_dropout", "ff_dropout", "ff_mult", "ff_no_bias", "attn_flash",
    "mem_positions", "mask_empty_mems", "mem_record",
)


class AttentionLayers(nn.Module):
    """A stack of ``depth`` layers, each ``attn`` [+ ``cross``] + ``ff`` pre-norm residual blocks, then a final norm.

    Every keyword that x-transformers' ``AttentionLayers`` also has takes x-transformers' default, so the same
    call builds the same model (same parameter names up to the mapping in ``xtlab.interop``, same shapes);
    an x-transformers keyword xtlab does not model is refused by name (``xtlab.model.keywords``).

    Args:
        dim: model width. depth: number of layers. heads: attention heads (8).
        causal: decoder (True) or encoder (False, x-transformers' default).
        attn_dim_head: width of each head (64); attention's inner width is ``heads * attn_dim_head``, so
            ``dim`` need not be divisible by ``heads``.
        rotary_pos_emb: rotary positions in self-attention.
        rotary_emb_dim: how many leading features of each head rotate (even; default ``attn_dim_head // 2``,
            x-transformers' partial rotary).
        layer_dropout: probability of skipping each block in a training forward pass, in [0, 1).
        cross_attend: add a cross-attention block to each layer (needs ``context`` in forward).
        attn_num_mem_kv: learned memory key/values per head, in self- and (as in x-transformers) cross-attention.
        use_rmsnorm / use_scalenorm: RMSNorm or ScaleNorm instead of LayerNorm.
        norm_add_unit_offset: store norm gains as offsets from 1, initialised at 0 (True, as x-transformers).
        norm_unit_offset: xtlab's older name for ``norm_add_unit_offset``; when given, it decides.
        pre_norm_has_final_norm: end the stack with a norm (True).
        attn_dropout, ff_dropout: ordinary (neuron) dropout inside attention and feed-forward.
        ff_mult: feed-forward inner width multiplier (4). ff_no_bias: feed-forward linears without biases.
        attn_flash: accepted for x-transformers compatibility; xtlab always runs PyTorch's SDPA, which is what
            x-transformers' ``attn_flash=True`` selects, so it changes nothing.
        mem_positions: ``"continuous"`` (memories at ``arange(-M, 0)``) or ``"restart"`` (teaching bug).
        mask_empty_mems: without ``mem_masks``, treat all-zero memory slots as empty (False: teaching bug).
        mem_record: record memories at the stage they are used, ``"normed"``; ``"residual"`` is the teaching
            bug that records the un-normalised residual stream but uses it as if normalised.

    Shape: forward x (b, n, dim) -> (b, n, dim), plus new memories when asked.
    """

    def __init__(self, dim: int, depth: int, heads: int = 8, *, causal: bool = False, rotary_pos_emb: bool = False,
                 rotary_emb_dim: int | None = None, attn_dim_head: int = DEFAULT_DIM_HEAD,
                 layer_dropout: float = 0.0, cross_attend: bool = False, attn_num_mem_kv: int = 0,
                 use_rmsnorm: bool = False, use_scalenorm: bool = False, norm_add_unit_offset: bool = True,
                 norm_unit_offset: bool | None = None, pre_norm_has_final_norm: bool = True,
                 attn_dropout: float = 0.0, ff_dropout: float = 0.0, ff_mult: float = 4, ff_no_bias: bool = False,
                 attn_flash: bool = False, mem_positions: str = "continuous", mask_empty_mems: bool = True,
                 mem_record: str = "normed", **kwargs):
        super().__init__()
        refuse_unknown_keywords(type(self).__name__, kwargs, ACCEPTED_KEYWORDS)
        check_int("depth", depth, minimum=1)
        check_attention_sizes(dim, heads, attn_dim_head)
        for flag, value in (("causal", causal), ("rotary_pos_emb", rotary_pos_emb), ("cross_attend", cross_attend),
                            ("use_rmsnorm", use_rmsnorm), ("use_scalenorm", use_scalenorm),
                            ("norm_add_unit_offset", norm_add_unit_offset), ("mask_empty_mems", mask_empty_mems),
                            ("pre_norm_has_final_norm", pre_norm_has_final_norm), ("ff_no_bias", ff_no_bias),
                            ("attn_flash", attn_flash)):
            check_bool(flag, value)
        unit_offset = norm_add_unit_offset if norm_unit_offset is None else check_bool("norm_unit_offset",
                                                                                      norm_unit_offset)
        if rotary_emb_dim is not None or rotary_pos_emb:
            rotary_emb_dim = check_rotary_dim(attn_dim_head // 2 if rotary_emb_dim is None else rotary_emb_dim,
                                              attn_dim_head)
        self.layer_dropout = check_probability("layer_dropout", layer_dropout)
        check_probability("attn_dropout", attn_dropout)
        check_probability("ff_dropout", ff_dropout)
        check_int("attn_num_mem_kv", attn_num_mem_kv, minimum=0)
        check_ff_mult(dim, ff_mult)
        check_choice("mem_positions", mem_positions, MEM_POSITION_MODES)
        check_choice("mem_record", mem_record, MEM_RECORD_STAGES)
        make_norm(dim, use_rmsnorm, use_scalenorm)  # validates the norm choice before building anything

        self.dim, self.depth, self.heads, self.causal = dim, depth, heads, causal
        self.attn_dim_head, self.rotary_emb_dim = attn_dim_head, rotary_emb_dim if rotary_pos_emb else None
        self.cross_attend, self.rotary_pos_emb = cross_attend, rotary_pos_emb
        self.mask_empty_mems, self.mem_record = mask_empty_mems, mem_record

        def norm() -> nn.Module:
            return make_norm(dim, use_rmsnorm, use_scalenorm, unit_offset)

        blocks = []
        for _ in range(depth):
            attn = SelfAttention(dim, heads, causal=causal, dim_head=attn_dim_head, dropout=attn_dropout,
                                 num_mem_kv=attn_num_mem_kv, rotary=rotary_pos_emb, rotary_dim=rotary_emb_dim,
                                 mem_positions=mem_positions)
            blocks.append(Block("attn", norm(), attn))
            if cross_attend:
                cross = CrossAttention(dim, heads, attn_dropout, dim_head=attn_dim_head, num_mem_kv=attn_num_mem_kv)
                blocks.append(Block("cross", norm(), cross))
            blocks.append(Block("ff", norm(), FeedForward(dim, ff_mult, ff_dropout, no_bias=ff_no_bias)))
        self.layers = nn.ModuleList(blocks)
        self.final_norm = norm() if pre_norm_has_final_norm else nn.Identity()
        self.last_skipped: tuple[int, ...] = ()

    @property
    def num_attn_layers(self) -> int:
        """How many self-attention layers, hence how many memories forward takes and returns."""
        return sum(block.kind == "attn" for block in self.layers)

    def draw_skips(self) -> list[bool]:
        """Which blocks to skip this forward pass. Drawn on the CPU with torch's RNG, so seeding reproduces it
        on any device; nothing is drawn in eval mode or when layer_dropout is 0."""
        if not self.training or self.layer_dropout == 0.0:
            return [False] * len(self.layers)
        return (torch.rand(len(self.layers)) < self.layer_dropout).tolist()

    def forward(self, x: Tensor, *, mask: Tensor | None = None, mems: list[Tensor] | None = None,
                mem_masks: Tensor | list[Tensor] | None = None, context: Tensor | None = None,
                context_mask: Tensor | None = None, return_mems: bool = False, max_mem_len: int = 0,
                record_from: int = 0) -> Tensor | tuple[Tensor, list[Tensor]]:
        """Run every block.

        Args:
            x: (b, n, dim) residual stream. mask: (b, n) bool, True for real tokens.
            mems: one (b, M_k, dim) memory per self-attention layer. mem_masks: (b, M) bool shared by all layers,
                or one (b, M_k) per layer; True = slot may be attended.
            context: (b, S, dim) for cross-attention; context_mask (b, S) bool.
            return_mems: also return the new memories: per layer the last ``max_mem_len`` positions of
                ``[memory ; current[record_from:]]`` at the recording stage, detached.
        """
        check_stream("x", x, self.dim)
        b, n, _ = x.shape
        if mask is not None:
            check_bool_mask("mask", mask, (b, n))
            check_device("mask", mask, x.device)
        check_bool("return_mems", return_mems)
        check_int("max_mem_len", max_mem_len, minimum=0)
        check_int("record_from", record_from, minimum=0, maximum=n)
        mem_list = self.check_mems(mems, b, x.device, x.dtype)
        mem_mask_list = self.check_mem_masks(mem_masks, mem_list, b)
        if self.cross_attend:
            context = self.check_context(context, context_mask, b, x)
        elif context is not None or context_mask is not None:
            given = "context" if context is not None else "context_mask"
            raise ValueError(f"{given} was given but this stack has cross_attend=False, so it would be ignored: "
                             f"build it with cross_attend=True")

        skips = self.draw_skips()
        self.last_skipped = tuple(i for i, skip in enumerate(skips) if skip)
        new_mems: list[Tensor] = []
        attn_index = 0
        for block, skip in zip(self.layers, skips, strict=True):
            if block.kind == "attn":
                mem = mem_list[attn_index] if mem_list is not None else None
                key_mask = self.key_mask(mem, mem_mask_list[attn_index] if mem_mask_list else None, mask, b, n)
                attn_index += 1
                if skip and not return_mems:
                    continue
                normed = block.norm(x)
                if return_mems:
                    recorded = (normed if self.mem_record == "normed" else x)[:, record_from:]
                    new_mems.append(update_memory(mem, recorded, max_mem_len))
                if not skip:
                    x = x + block.fn(normed, mem=mem, key_mask=key_mask)
            elif skip:
                continue
            elif block.kind == "cross":
                x = x + block.fn(block.norm(x), context, context_mask)
            else:
                x = x + block.fn(block.norm(x))
        x = self.final_norm(x)
        return (x, new_mems) if return_mems else x

    def key_mask(self, mem: Tensor | None, mem_mask: Tensor | None, mask: Tensor | None, b: int, n: int):
        """(b, M + n) bool over ``[memory ; current]`` keys, or None when every key may be attended."""
        if mem is not None and mem.shape[1] > 0:
            if mem_mask is None:
                mem_mask = mem.abs().amax(dim=-1) > 0 if self.mask_empty_mems else None
            if mem_mask is not None or mask is not None:
                mem_part = mem_mask if mem_mask is not None else torch.ones(b, mem.shape[1], dtype=torch.bool,
                                                                            device=mem.device)
                current = mask if mask is not None else torch.ones(b, n, dtype=torch.bool, device=mem.device)
                return torch.cat((mem_part, current), dim=1)
            return None
        return mask

    def check_mems(self, mems, b: int, device, dtype: torch.dtype | None = None) -> list[Tensor] | None:
        """``mems`` as a list of (b, M_k, dim) floating tensors on ``device`` (of ``dtype``, the model's, when
        given: a memory of another dtype would be promoted silently or fail deep in a matmul)."""
        if mems is None:
            return None
        check_type("mems", mems, (list, tuple), "a list with one tensor per attention layer")
        if len(mems) != self.num_attn_layers:
            raise ValueError(f"mems must hold one tensor per attention layer ({self.num_attn_layers}), "
                             f"but got {len(mems)}")
        for k, mem in enumerate(mems):
            check_tensor(f"mems[{k}]", mem)
            if mem.dim() != 3 or mem.shape[0] != b or mem.shape[2] != self.dim:
                raise ValueError(f"mems[{k}] must have shape (batch={b}, M, dim={self.dim}), "
                                 f"but got {tuple(mem.shape)}")
            check_tensor(f"mems[{k}]", mem, kind="floating")
            if dtype is not None:
                check_dtype(f"mems[{k}]", mem, dtype, " (the model's dtype)")
            check_device(f"mems[{k}]", mem, device)
        return list(mems)

    def check_mem_masks(self, mem_masks, mem_list, b: int) -> list[Tensor] | None:
        if mem_masks is None:
            return None
        if mem_list is None:
            raise ValueError("mem_masks was given without mems: pass the memories they describe")
        if isinstance(mem_masks, Tensor):
            mem_masks = [mem_masks] * len(mem_list)
        if not isinstance(mem_masks, (list, tuple)) or len(mem_masks) != len(mem_list):
            got = len(mem_masks) if isinstance(mem_masks, (list, tuple)) else type(mem_masks).__name__
            raise ValueError(f"mem_masks must be one (b, M) bool tensor or a list of {len(mem_list)}, but got {got}")
        return [check_device(f"mem_masks[{k}]", check_bool_mask(f"mem_masks[{k}]", mm, (b, mem.shape[1])), mem.device)
                for k, (mm, mem) in enumerate(zip(mem_masks, mem_list, strict=True))]

    def check_context(self, context, context_mask, b: int, x: Tensor | None = None) -> Tensor:
        """``context`` (b, S, dim) floating (of x's dtype and on its device when ``x`` is given); ``context_mask``
        (b, S) bool or None."""
        if context is None:
            raise ValueError("this stack has cross_attend=True, so forward needs context (b, S, dim), but got None")
        check_stream("context", context, self.dim, b)
        if x is not None:
            check_dtype("context", context, x.dtype, " (the model's dtype)")
            check_device("context", context, x.device)
        if context_mask is not None:
            check_bool_mask("context_mask", context_mask, tuple(context.shape[:2]))
            check_device("context_mask", context_mask, context.device, " (the device of context)")
        return context

    def extra_repr(self) -> str:
        return (f"dim={self.dim}, depth={self.depth}, heads={self.heads}, attn_dim_head={self.attn_dim_head}, "
                f"causal={self.causal}, "
                f"layer_dropout={self.layer_dropout}, rotary_pos_emb={self.rotary_pos_emb}")


class Decoder(AttentionLayers):
    """A causal stack: each token attends to itself and earlier tokens (and to all memories)."""

    def __init__(self, dim: int, depth: int, heads: int = 8, **kwargs):
        if "causal" in kwargs:
            raise TypeError("Decoder is always causal: do not pass causal (use Encoder for a bidirectional stack)")
        super().__init__(dim, depth, heads, causal=True, **kwargs)


class Encoder(AttentionLayers):
    """A bidirectional stack: each token attends to every token."""

    def __init__(self, dim: int, depth: int, heads: int = 8, **kwargs):
        if "causal" in kwargs:
            raise TypeError("Encoder is never causal: do not pass causal (use Decoder for a causal stack)")
        super().__init__(dim, depth, heads, causal=False, **kwargs)
