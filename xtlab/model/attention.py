"""Self-attention (with XL memories and learned memory key/values) and cross-attention, on SDPA."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from xtlab._checks import (
    check_bool,
    check_bool_mask,
    check_choice,
    check_device,
    check_dtype,
    check_int,
    check_last_dim,
    check_probability,
)
from xtlab.model.rotary import MEM_POSITION_MODES, RotaryEmbedding, memory_positions, rotate_leading

# x-transformers' DEFAULT_DIM_HEAD: a head is 64 wide whatever the model width, so the attention's inner
# width is heads * dim_head and need not equal dim
DEFAULT_DIM_HEAD = 64


def check_heads(dim: int, heads: int) -> int:
    """``dim`` and ``heads`` as positive ints with ``dim % heads == 0``; returns ``dim // heads``.

    Kept for callers that size heads from the width; the attention modules themselves take ``dim_head``.
    """
    check_int("dim", dim, minimum=1)
    check_int("heads", heads, minimum=1)
    if dim % heads:
        raise ValueError(f"dim must be divisible by heads, but got dim={dim}, heads={heads}")
    return dim // heads


def check_attention_sizes(dim: int, heads: int, dim_head: int) -> int:
    """``dim``, ``heads`` and ``dim_head`` as positive ints; returns the inner width ``heads * dim_head``."""
    check_int("dim", dim, minimum=1)
    check_int("heads", heads, minimum=1)
    check_int("dim_head", dim_head, minimum=1)
    return heads * dim_head


def output_projection(inner: int, dim: int, heads: int) -> nn.Module:
    """``to_out``: Linear(inner, dim), or the identity where x-transformers has none (one head whose width is
    already ``dim``: nothing to mix)."""
    if heads == 1 and inner == dim:
        return nn.Identity()
    return nn.Linear(inner, dim, bias=False)


def check_stream(name: str, value, dim: int, batch: int | None = None, like: Tensor | None = None) -> Tensor:
    """A (b, n, dim) floating tensor; with ``like``, of its dtype and on its device (the input's)."""
    check_last_dim(name, value, dim)
    if value.ndim != 3 or (batch is not None and value.shape[0] != batch):
        shown_batch = "batch" if batch is None else f"batch={batch}"
        raise ValueError(f"{name} must have shape ({shown_batch}, n, dim={dim}), but got {tuple(value.shape)}")
    if like is not None:
        check_dtype(name, value, like.dtype, " (the dtype of x)")
        check_device(name, value, like.device, " (the device of x)")
    return value


class SelfAttention(nn.Module):
    """Multi-head self-attention over ``[memory ; current]`` keys.

    Args:
        dim: model width. heads: number of heads.
        causal: whether a token may attend only to itself and earlier tokens (memories are always earlier).
        dim_head: width of each head (64, as in x-transformers); the inner width is ``heads * dim_head``.
        dropout: attention-probability dropout in training.
        num_mem_kv: learned per-head memory key/values (``mem_k``, ``mem_v``), always attendable, unrotated
            (so under rotary their scores depend on a query's position within its segment).
        rotary: apply rotary position embedding to queries and keys.
        rotary_dim: how many leading features of each head rotate (even; default ``dim_head // 2``, the
            partial rotary of x-transformers); the rest carry no position.
        mem_positions: ``"continuous"`` (memories at ``-M..-1``) or ``"restart"`` (teaching bug: ``0..M-1``).

    Shape: x (b, T, dim) already normalised; mem (b, M, dim); key_mask (b, M + T) bool -> (b, T, dim).
    """

    def __init__(self, dim: int, heads: int, *, causal: bool, dim_head: int = DEFAULT_DIM_HEAD, dropout: float = 0.0,
                 num_mem_kv: int = 0, rotary: bool = False, rotary_dim: int | None = None,
                 mem_positions: str = "continuous"):
        inner = check_attention_sizes(dim, heads, dim_head)
        check_bool("causal", causal)
        check_probability("dropout", dropout)
        check_int("num_mem_kv", num_mem_kv, minimum=0)
        check_bool("rotary", rotary)
        check_choice("mem_positions", mem_positions, MEM_POSITION_MODES)
        if rotary:
            rotary_dim = check_rotary_dim(dim_head // 2 if rotary_dim is None else rotary_dim, dim_head)
        super().__init__()
        self.dim, self.heads, self.dim_head, self.inner = dim, heads, dim_head, inner
        self.causal, self.dropout, self.mem_positions = causal, dropout, mem_positions
        self.to_qkv = nn.Linear(dim, 3 * inner, bias=False)  # fused: one matmul for q, k, v
        self.to_out = output_projection(inner, dim, heads)
        self.num_mem_kv = num_mem_kv
        if num_mem_kv > 0:
            self.mem_k = nn.Parameter(torch.randn(heads, num_mem_kv, self.dim_head))
            self.mem_v = nn.Parameter(torch.randn(heads, num_mem_kv, self.dim_head))
        self.rotary = RotaryEmbedding(rotary_dim) if rotary else None
        self._rotation_cache: dict[tuple, tuple[Tensor, Tensor]] = {}

    def project(self, x: Tensor, mem: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """Queries for current tokens; keys and values for ``[mem_kv ; memory ; current]``, rotated.

        Returns q (b, h, T, d), k and v (b, h, mem_kv + M + T, d).
        """
        self.check_inputs(x, mem)
        return self._project(x, mem)

    def check_inputs(self, x, mem=None, key_mask=None) -> None:
        """x (b, T, dim) floating; mem (b, M, dim) of x's dtype and device; key_mask (b, M + T) bool."""
        check_stream("x", x, self.dim)
        if mem is not None:
            check_stream("mem", mem, self.dim, x.shape[0], like=x)
        if key_mask is not None:
            m = 0 if mem is None else mem.shape[1]
            check_bool_mask("key_mask", key_mask, (x.shape[0], m + x.shape[1]))
            check_device("key_mask", key_mask, x.device, " (the device of x)")

    def _project(self, x: Tensor, mem: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        b, t, _ = x.shape
        m = 0 if mem is None else mem.shape[1]
        if m == 0:
            q, k, v = self.to_qkv(x).view(b, t, 3, self.heads, self.dim_head).permute(2, 0, 3, 1, 4)
        else:  # no queries for memory rows: project x for q, [mem ; x] for k and v (same fused weight)
            w_q, w_kv = self.to_qkv.weight.split((self.inner, 2 * self.inner))
            q = F.linear(x, w_q).view(b, t, self.heads, self.dim_head).transpose(1, 2)
            kv = F.linear(torch.cat((mem, x), dim=1), w_kv).view(b, m + t, 2, self.heads, self.dim_head)
            k, v = kv.permute(2, 0, 3, 1, 4)  # each (b, h, M+T, d)
        if self.rotary is not None:
            cos, sin = self.rotations(m, t, x.device, x.dtype)
            # queries sit at the last T key positions
            k, q = rotate_leading(k, cos, sin), rotate_leading(q, cos[m:], sin[m:])
        if self.num_mem_kv > 0:
            k = torch.cat((self.mem_k.expand(b, -1, -1, -1), k), dim=2)
            v = torch.cat((self.mem_v.expand(b, -1, -1, -1), v), dim=2)
        return q, k, v

    def rotations(self, m: int, t: int, device, dtype) -> tuple[Tensor, Tensor]:
        """cos and sin (M+T, rotary_dim) of the key positions, cached: the same (M, T) comes back every step."""
        key = (m, t, self.mem_positions, device, dtype)
        if key not in self._rotation_cache:
            if len(self._rotation_cache) >= 16:
                self._rotation_cache.clear()
            angles = self.rotary(memory_positions(m, t, self.mem_positions, device=device))  # float64
            self._rotation_cache[key] = (angles.cos().to(dtype), angles.sin().to(dtype))
        return self._rotation_cache[key]

    def forward(self, x: Tensor, mem: Tensor | None = None, key_mask: Tensor | None = None) -> Tensor:
        self.check_inputs(x, mem, key_mask)
        b, t, _ = x.shape
        m = 0 if mem is None else mem.shape[1]
        q, k, v = self._project(x, mem)
        dropout = self.dropout if self.training else 0.0
        if key_mask is None and m == 0 and self.num_mem_kv == 0:
            out = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout, is_causal=self.causal)
        else:
            attn_mask = self.attention_mask(b, t, m, key_mask, x.device)
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout)
        out = out.transpose(1, 2).reshape(b, t, self.inner)
        return self.to_out(out)

    def attention_weights(self, x: Tensor, mem: Tensor | None = None, key_mask: Tensor | None = None) -> Tensor:
        """The post-softmax weights forward uses (SDPA returns none): (b, h, T, mem_kv + M + T)."""
        self.check_inputs(x, mem, key_mask)
        b, t, _ = x.shape
        m = 0 if mem is None else mem.shape[1]
        q, k, _ = self._project(x, mem)
        scores = (q @ k.transpose(-1, -2)) * self.dim_head**-0.5
        allowed = self.attention_mask(b, t, m, key_mask, x.device)
        return scores.masked_fill(~allowed, float("-inf")).softmax(dim=-1)

    def attention_mask(self, b: int, t: int, m: int, key_mask: Tensor | None, device) -> Tensor:
        """Boolean (b, 1, T, mem_kv + M + T): True where a query may attend a key."""
        allowed = torch.ones(t, m + t, dtype=torch.bool, device=device)
        if self.causal:
            allowed[:, m:] = torch.ones(t, t, dtype=torch.bool, device=device).tril()
        allowed = allowed.expand(b, t, m + t)
        if key_mask is not None:
            allowed = allowed & key_mask[:, None, :]
            # each query may always see itself: a padded row never becomes all-False (NaN in softmax)
            itself = torch.zeros(t, m + t, dtype=torch.bool, device=device)
            itself[torch.arange(t), m + torch.arange(t)] = True
            allowed = allowed | itself
        if self.num_mem_kv > 0:
            learned = torch.ones(b, t, self.num_mem_kv, dtype=torch.bool, device=device)
            allowed = torch.cat((learned, allowed), dim=-1)
        return allowed[:, None]

    def extra_repr(self) -> str:
        rotary = f", rotary_dim={self.rotary.dim_head}" if self.rotary is not None else ""
        return (f"heads={self.heads}, dim_head={self.dim_head}, causal={self.causal}, num_mem_kv={self.num_mem_kv}"
                f"{rotary}, mem_positions={self.mem_positions!r}")


def check_rotary_dim(rotary_dim: int, dim_head: int) -> int:
    """An even ``rotary_dim`` in ``[2, dim_head]``: the leading features of a head that rotate."""
    check_int("rotary_emb_dim", rotary_dim, minimum=2, maximum=dim_head)
    if rotary_dim % 2:
        raise ValueError(f"rotary_emb_dim must be even (features rotate in pairs), but got {rotary_dim} "
                         f"(dim_head={dim_head})")
    return rotary_dim


class CrossAttention(nn.Module):
    """Multi-head attention from current tokens to a context (e.g. an encoder's output).

    Args:
        dim: model width. heads: number of heads. dropout: attention-probability dropout in training.
        dim_head: width of each head (64, as in x-transformers).
        num_mem_kv: learned per-head memory key/values, always attendable (x-transformers gives cross-attention
            the same ``attn_num_mem_kv`` as self-attention).

    Shape: x (b, T, dim) normalised; context (b, S, dim); context_mask (b, S) bool -> (b, T, dim).
    """

    def __init__(self, dim: int, heads: int, dropout: float = 0.0, *, dim_head: int = DEFAULT_DIM_HEAD,
                 num_mem_kv: int = 0):
        inner = check_attention_sizes(dim, heads, dim_head)
        check_probability("dropout", dropout)
        check_int("num_mem_kv", num_mem_kv, minimum=0)
        super().__init__()
        self.dim, self.heads, self.dim_head, self.inner, self.dropout = dim, heads, dim_head, inner, dropout
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(dim, 2 * inner, bias=False)
        self.to_out = output_projection(inner, dim, heads)
        self.num_mem_kv = num_mem_kv
        if num_mem_kv > 0:
            self.mem_k = nn.Parameter(torch.randn(heads, num_mem_kv, dim_head))
            self.mem_v = nn.Parameter(torch.randn(heads, num_mem_kv, dim_head))

    def forward(self, x: Tensor, context: Tensor, context_mask: Tensor | None = None) -> Tensor:
        check_stream("x", x, self.dim)
        check_stream("context", context, self.dim, x.shape[0], like=x)
        if context_mask is not None:
            check_bool_mask("context_mask", context_mask, tuple(context.shape[:2]))
            check_device("context_mask", context_mask, x.device, " (the device of x)")
        b, t, _ = x.shape
        s = context.shape[1]
        q = self.to_q(x).view(b, t, self.heads, self.dim_head).transpose(1, 2)
        k, v = self.to_kv(context).view(b, s, 2, self.heads, self.dim_head).permute(2, 0, 3, 1, 4)
        if self.num_mem_kv > 0:
            k = torch.cat((self.mem_k.expand(b, -1, -1, -1), k), dim=2)
            v = torch.cat((self.mem_v.expand(b, -1, -1, -1), v), dim=2)
            if context_mask is not None:
                learned = torch.ones(b, self.num_mem_kv, dtype=torch.bool, device=context_mask.device)
                context_mask = torch.cat((learned, context_mask), dim=1)
        attn_mask = None if context_mask is None else context_mask[:, None, None, :]
        dropout = self.dropout if self.training else 0.0
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout)
        return self.to_out(out.transpose(1, 2).reshape(b, t, self.inner))

    def extra_repr(self) -> str:
        return f"heads={self.heads}, dim_head={self.dim_head}, num_mem_kv={self.num_mem_kv}"
