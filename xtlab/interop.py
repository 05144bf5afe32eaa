"""Load an x-transformers ``TransformerWrapper`` or ``XTransformer``'s weights into the equivalent xtlab model.

The two libraries build the same model from the same arguments (``xtlab.model`` mirrors x-transformers'
defaults), but store it under different names and layouts. This module is only the mapping:

- ``token_emb.emb.weight`` -> ``token_emb.weight`` (xtlab's embedding is a plain ``nn.Embedding``, which
  ``TiedLinear`` ties to);
- per block ``layers.{i}.0.0.<gain>`` (the pre-norm) -> ``layers.{i}.norm.<gain>``, ``layers.{i}.1.*`` -> ``fn``;
- self-attention ``to_q``, ``to_k``, ``to_v`` -> one fused ``to_qkv`` (rows stacked q, k, v); cross-attention
  ``to_k``, ``to_v`` -> ``to_kv``;
- feed-forward ``ff.0.0`` / ``ff.2`` -> ``net.0`` / ``net.3``;
- rotary: x-transformers rotates interleaved feature pairs (0, 1), (2, 3), ...; xtlab rotates split halves
  (i, i + r/2). Both are the same rotation of a permuted basis, so the rotated rows of each head's query and
  key weights (and ``mem_k``'s features) are permuted; attention scores, hence every output, are unchanged.
- ``XTransformer``: ``encoder.*`` -> ``encoder.*`` and ``decoder.net.*`` (x-transformers wraps its decoder in an
  ``AutoregressiveWrapper``) -> ``decoder.*``, each part mapped as above; ``tie_token_emb`` shares one
  embedding in both libraries.

Differences that remain, by design (pinned in ``tests/test_interop.py``):

- XL memories: x-transformers records each attention layer's *input* (the residual stream) and normalises
  it when used; xtlab records it already normalised (what attention reads). ``memories_from_x_transformers``
  converts one into the other. x-transformers also records the memory tokens into the XL memory; xtlab
  records only the sequence's own positions.
- padded query positions: x-transformers zeroes the attention output there; xtlab lets the padded query see
  itself. Outputs at real positions agree.
- layer dropout: x-transformers draws with Python's ``random`` and, when it skips an attention layer,
  ``continue``s before popping that layer's memory and recording its new one, so later layers receive the
  wrong memory (the bug lab 03 teaches); xtlab draws from torch's CPU RNG and keeps memories aligned.
- ``XTransformer`` targets: x-transformers runs its decoder over all T target tokens and drops the last
  logits, so T may be at most ``dec_max_seq_len``, and it ignores targets equal to ``ignore_index`` (padding);
  xtlab runs the decoder over the T - 1 inputs only (T up to ``dec_max_seq_len + 1``) and takes no padded
  targets (every target id must be a token). The loss on unpadded targets is the same.

Features without parameters that x-transformers has and xtlab lacks cannot be seen in a state dict;
``twin_of`` reads the configuration and refuses the ones it knows about, and the numeric tests are the guard.
"""

from __future__ import annotations

import re

import torch
from torch import Tensor, nn

from xtlab._checks import check_module, check_type
from xtlab.model import Decoder, Encoder, LayerNorm, RMSNorm, ScaleNorm, TransformerWrapper, XTransformer

__all__ = ["load_x_transformers", "memories_from_x_transformers", "twin_of", "xtlab_state_dict"]

_NORMS = {"LayerNorm": LayerNorm, "RMSNorm": RMSNorm, "ScaleNorm": ScaleNorm}
# x-transformers state-dict entries with no xtlab counterpart that carry no learned information
_DERIVED = ("attn_layers.rotary_pos_emb.inv_freq",)


def _xt_classes():
    try:
        import x_transformers.x_transformers as xt
    except ImportError as error:  # pragma: no cover - x-transformers is a dependency of xtlab
        raise ImportError("xtlab.interop needs the x-transformers package (pip install x-transformers)") from error
    return xt


def _is_identity(module) -> bool:
    """x-transformers uses its own ``Identity`` class (from torch_einops_utils) as well as torch's."""
    return type(module).__name__ == "Identity"


def rotary_permutation(dim_head: int, rotary_dim: int) -> Tensor:
    """Index ``p`` (dim_head,) with ``xtlab_features = xt_features[..., p]``: x-transformers' interleaved pair
    (2i, 2i+1) becomes xtlab's split pair (i, i + r/2); features past ``rotary_dim`` keep their place."""
    half = torch.arange(0, rotary_dim, 2)
    return torch.cat((half, half + 1, torch.arange(rotary_dim, dim_head)))


def _permute_heads(weight: Tensor, heads: int, perm: Tensor) -> Tensor:
    """Rows (heads * d, dim) of a query/key projection with each head's features permuted by ``perm``."""
    d = perm.numel()
    return weight.view(heads, d, -1)[:, perm].reshape(heads * d, -1)


def _block_map(kind: str, src: str, dst: str, xt_sd: dict, perm: Tensor | None, heads: int) -> dict[str, Tensor]:
    """The xtlab entries of one block ``dst`` (``attn_layers.layers.{i}``) from x-transformers' ``src``."""
    out: dict[str, Tensor] = {}
    for gain in ("gamma", "g"):
        if f"{src}.0.0.{gain}" in xt_sd:
            out[f"{dst}.norm.{gain}"] = xt_sd[f"{src}.0.0.{gain}"]
    fn = f"{src}.1"
    if kind == "ff":
        for xt_name, name in (("ff.0.0", "net.0"), ("ff.2", "net.3")):
            for p in ("weight", "bias"):
                if f"{fn}.{xt_name}.{p}" in xt_sd:
                    out[f"{dst}.fn.{name}.{p}"] = xt_sd[f"{fn}.{xt_name}.{p}"]
        return out
    q, k, v = (xt_sd[f"{fn}.to_{n}.weight"] for n in "qkv")
    mem_k = xt_sd.get(f"{fn}.mem_k")
    if kind == "attn" and perm is not None:  # only self-attention rotates
        q, k = _permute_heads(q, heads, perm), _permute_heads(k, heads, perm)
        mem_k = None if mem_k is None else mem_k[..., perm]
    if kind == "attn":
        out[f"{dst}.fn.to_qkv.weight"] = torch.cat((q, k, v), dim=0)
    else:
        out[f"{dst}.fn.to_q.weight"] = q
        out[f"{dst}.fn.to_kv.weight"] = torch.cat((k, v), dim=0)
    if f"{fn}.to_out.weight" in xt_sd:
        out[f"{dst}.fn.to_out.weight"] = xt_sd[f"{fn}.to_out.weight"]
    if mem_k is not None:
        out[f"{dst}.fn.mem_k"], out[f"{dst}.fn.mem_v"] = mem_k, xt_sd[f"{fn}.mem_v"]
    return out


def xtlab_state_dict(model: TransformerWrapper | XTransformer, xt_model: nn.Module) -> dict[str, Tensor]:
    """``xt_model``'s weights under ``model``'s names and layouts (tensors shared where no layout changes).

    Args:
        model: the xtlab ``TransformerWrapper`` or ``XTransformer`` to receive them (built with the same
            arguments).
        xt_model: an x-transformers ``TransformerWrapper`` (for a ``TransformerWrapper``) or ``XTransformer``.

    Raises ValueError naming any x-transformers entry that has no place in ``model`` (a feature xtlab does
    not model) or any ``model`` entry left unfilled.
    """
    check_type("model", model, (TransformerWrapper, XTransformer), "an xtlab TransformerWrapper or XTransformer")
    xt = _xt_classes()
    if isinstance(model, XTransformer):
        check_type("xt_model", xt_model, xt.XTransformer, "an x-transformers XTransformer (model is an XTransformer)")
        xt_tied = xt_model.decoder.net.token_emb is xt_model.encoder.token_emb
        if xt_tied != model.tie_token_emb:
            raise ValueError(f"the models differ in tie_token_emb: xtlab {model.tie_token_emb}, "
                             f"x-transformers {xt_tied}")
        return {f"{part}.{name}": value
                for part, xt_part in (("encoder", xt_model.encoder), ("decoder", xt_model.decoder.net))
                for name, value in _wrapper_state_dict(getattr(model, part), xt_part, part).items()}
    check_type("xt_model", xt_model, xt.TransformerWrapper, "an x-transformers TransformerWrapper")
    return _wrapper_state_dict(model, xt_model)


def _wrapper_state_dict(model: TransformerWrapper, xt_model: nn.Module, part: str = "") -> dict[str, Tensor]:
    """``xtlab_state_dict`` for one ``TransformerWrapper``; ``part`` prefixes the names in error messages."""
    where = f"{part}: " if part else ""
    xt_sd = xt_model.state_dict()
    layers = model.attn_layers
    kinds = [block.kind for block in layers.layers]
    xt_kinds = [{"a": "attn", "c": "cross", "f": "ff"}[t] for t in xt_model.attn_layers.layer_types]
    if kinds != xt_kinds:
        raise ValueError(f"{where}the two stacks differ in their blocks: xtlab {kinds}, x-transformers {xt_kinds}")
    perm = None
    if layers.rotary_pos_emb:
        perm = rotary_permutation(layers.attn_dim_head, layers.rotary_emb_dim)

    out: dict[str, Tensor] = {"token_emb.weight": xt_sd["token_emb.emb.weight"]}
    for name in ("pos_emb.emb.weight", "memory_tokens", "to_logits.weight"):
        if name in xt_sd:
            out[name] = xt_sd[name]
    for gain in ("gamma", "g"):
        if f"attn_layers.final_norm.{gain}" in xt_sd:
            out[f"attn_layers.final_norm.{gain}"] = xt_sd[f"attn_layers.final_norm.{gain}"]
    for i, kind in enumerate(kinds):
        out.update(_block_map(kind, f"attn_layers.layers.{i}", f"attn_layers.layers.{i}", xt_sd, perm, layers.heads))

    used = _used_xt_keys(xt_sd, len(kinds))
    unmapped = sorted(set(xt_sd) - used - set(_DERIVED))
    if unmapped:
        raise ValueError(f"{where}x-transformers entries xtlab does not model: {unmapped[:8]}"
                         f"{' ...' if len(unmapped) > 8 else ''}")
    expected = set(model.state_dict())
    missing, extra = sorted(expected - set(out)), sorted(set(out) - expected)
    if missing or extra:
        raise ValueError(f"{where}the models differ in their parameters: xtlab entries not filled {missing[:8]}, "
                         f"x-transformers entries with no xtlab place {extra[:8]}")
    for name, value in out.items():
        want = model.state_dict()[name].shape
        if value.shape != want:
            raise ValueError(f"{where}{name}: x-transformers gives shape {tuple(value.shape)}, xtlab has {tuple(want)}")
    return out


def _used_xt_keys(xt_sd: dict, num_blocks: int) -> set[str]:
    """The x-transformers entries ``xtlab_state_dict`` reads: everything under the names it maps."""
    block = re.compile(r"attn_layers\.layers\.(\d+)\.(0\.0\.(gamma|g)|1\.(to_[qkv]|to_out|mem_[kv]|ff\.0\.0|ff\.2)"
                       r"(\.weight|\.bias)?)$")
    top = {"token_emb.emb.weight", "pos_emb.emb.weight", "memory_tokens", "to_logits.weight",
           "attn_layers.final_norm.gamma", "attn_layers.final_norm.g"}
    return {k for k in xt_sd if k in top or ((m := block.match(k)) and int(m.group(1)) < num_blocks)}


@torch.no_grad()
def load_x_transformers(model: TransformerWrapper | XTransformer, xt_model: nn.Module
                        ) -> TransformerWrapper | XTransformer:
    """Copy ``xt_model``'s weights into ``model`` (in place, keeping ``model``'s dtype and device); returns it.
    ``model`` and ``xt_model`` are both wrappers or both ``XTransformer``s."""
    state = xtlab_state_dict(model, xt_model)
    own = model.state_dict()
    model.load_state_dict({k: v.to(own[k].dtype).to(own[k].device) for k, v in state.items()})
    return model


def memories_from_x_transformers(model: TransformerWrapper, xt_mems: list[Tensor]) -> list[Tensor]:
    """x-transformers' XL memories (each layer's residual-stream input) as xtlab's (the same, pre-normed by
    that layer's attention norm, which is what attention reads and what xtlab records)."""
    check_type("model", model, TransformerWrapper, "an xtlab TransformerWrapper")
    norms = [block.norm for block in model.attn_layers.layers if block.kind == "attn"]
    check_type("xt_mems", xt_mems, (list, tuple), "a list with one tensor per attention layer")
    if len(xt_mems) != len(norms):
        raise ValueError(f"xt_mems must hold one tensor per attention layer ({len(norms)}), but got {len(xt_mems)}")
    return [norm(mem) for norm, mem in zip(norms, xt_mems, strict=True)]


def twin_of(xt_model: nn.Module) -> TransformerWrapper | XTransformer:
    """The xtlab ``TransformerWrapper`` (or ``XTransformer``) equivalent to ``xt_model``, with its weights loaded.

    Reads the configuration from the x-transformers modules and refuses (ValueError) the features xtlab
    does not model that it can see.
    """
    xt = _xt_classes()
    check_module("xt_model", xt_model)
    check_type("xt_model", xt_model, (xt.TransformerWrapper, xt.XTransformer),
               "an x-transformers TransformerWrapper or XTransformer")
    if isinstance(xt_model, xt.XTransformer):
        model = _xtransformer_twin(xt_model)
    else:
        stack, sizes, stack_kwargs, wrapper_kwargs = _twin_arguments(xt_model)
        model = TransformerWrapper(attn_layers=stack(*sizes, **stack_kwargs), **wrapper_kwargs)
    param = next(xt_model.parameters())
    model = model.to(device=param.device, dtype=param.dtype)
    return load_x_transformers(model, xt_model).train(xt_model.training)


def _xtransformer_twin(xt_model: nn.Module) -> XTransformer:
    """An xtlab ``XTransformer`` built with the ``enc_``/``dec_`` arguments read from ``xt_model``'s two parts."""
    if xt_model.cross_attn_tokens_dropout > 0:
        raise ValueError(f"xtlab does not model x-transformers' cross_attn_tokens_dropout, but this XTransformer "
                         f"has {xt_model.cross_attn_tokens_dropout}")
    encoder, decoder = xt_model.encoder, xt_model.decoder.net
    kwargs = {}
    for prefix, part in (("enc_", encoder), ("dec_", decoder)):
        _, (_, depth, heads), stack_kwargs, wrapper_kwargs = _twin_arguments(part)
        del stack_kwargs["cross_attend"], wrapper_kwargs["return_only_embed"]  # XTransformer sets these itself
        if prefix == "enc_":
            del wrapper_kwargs["tie_embedding"]  # the encoder has no output projection to tie
        kwargs.update({prefix + k: v for k, v in {"depth": depth, "heads": heads, **stack_kwargs,
                                                  **wrapper_kwargs}.items()})
    return XTransformer(dim=encoder.attn_layers.dim, tie_token_emb=decoder.token_emb is encoder.token_emb,
                        **kwargs)


def _twin_arguments(xt_model: nn.Module) -> tuple[type, tuple[int, int, int], dict, dict]:
    """What builds the xtlab twin of an x-transformers ``TransformerWrapper``: the stack class, its
    (dim, depth, heads), its keywords and the wrapper's keywords."""
    al = xt_model.attn_layers
    kinds = tuple(al.layer_types)
    cross = kinds[:3] == ("a", "c", "f")
    block = ("a", "c", "f") if cross else ("a", "f")
    if kinds != block * (len(kinds) // len(block)) or len(al.layers_execute_order) != len(kinds):
        raise ValueError(f"xtlab models only repeated {block} blocks, but this stack runs {kinds}")
    attn = al.layers[0][1]
    ff = al.layers[len(block) - 1][1]
    norm = al.layers[0][0][0]
    norm_name = type(norm).__name__
    if norm_name not in _NORMS or al.layers[0][0][1] is not None or al.layers[0][0][2] is not None:
        raise ValueError(f"xtlab models pre-norm blocks with LayerNorm, RMSNorm or ScaleNorm, not {norm_name} "
                         f"(or sandwich / post norms)")
    _refuse_wrapper_features(xt_model)
    rotary = al.rotary_pos_emb
    rotary_kwargs = {}
    if rotary is not None:
        r = rotary.inv_freq.numel() * 2
        expected = 1.0 / 10000 ** (torch.arange(0, r, 2).float() / r)
        if rotary.scale is not None or rotary.interpolation_factor != 1.0 or not torch.allclose(
                rotary.inv_freq.cpu(), expected):
            raise ValueError("xtlab models rotary with base 10000 only (no xpos, interpolation or rescaled base)")
        rotary_kwargs = {"rotary_pos_emb": True, "rotary_emb_dim": r}
    proj_in = ff.ff[0][0]
    dropouts = [m.p for m in ff.modules() if isinstance(m, nn.Dropout)]
    if len(set(al.layer_dropouts)) > 1:
        raise ValueError("xtlab models one layer_dropout for every block")
    stack_kwargs = dict(
        attn_dim_head=al.attn_dim_head, cross_attend=cross, attn_num_mem_kv=attn.num_mem_kv,
        use_rmsnorm=norm_name == "RMSNorm", use_scalenorm=norm_name == "ScaleNorm",
        norm_add_unit_offset=bool(norm.unit_offset), pre_norm_has_final_norm=not _is_identity(al.final_norm),
        attn_dropout=float(attn.attend.dropout), ff_dropout=dropouts[0] if dropouts else 0.0,
        ff_mult=proj_in.out_features / al.dim, ff_no_bias=proj_in.bias is None,
        layer_dropout=float(al.layer_dropouts[0]), **rotary_kwargs)
    tied = xt_model.to_logits is not None and not isinstance(xt_model.to_logits, nn.Module)
    wrapper_kwargs = dict(
        num_tokens=xt_model.num_tokens, max_seq_len=xt_model.max_seq_len, num_memory_tokens=xt_model.num_memory_tokens,
        max_mem_len=xt_model.max_mem_len, tie_embedding=tied, return_only_embed=xt_model.to_logits is None,
        emb_dropout=float(xt_model.emb_dropout.p),
        tie_embedding_scale=float(xt_model.tie_embedding_scale) if tied else None)
    stack = Decoder if al.causal else Encoder
    return stack, (al.dim, len(kinds) // len(block), al.attn_heads), stack_kwargs, wrapper_kwargs


def _refuse_wrapper_features(xt_model: nn.Module) -> None:
    """ValueError for x-transformers wrapper features that change the numbers but hold no parameters of
    their own (or none xtlab has)."""
    checks = {
        "post_emb_norm": not _is_identity(xt_model.post_emb_norm),
        "l2norm_embed": xt_model.l2norm_embed,
        "emb_dim != dim": not _is_identity(xt_model.project_emb),
        "memory_tokens_interspersed_every": xt_model.memory_tokens_interspersed_every is not None,
        "shift_mem_down": bool(xt_model.shift_mem_down),
        "emb_frac_gradient": xt_model.emb_frac_gradient != 1.0,
        "absolute positions together with rotary": (xt_model.attn_layers.rotary_pos_emb is not None)
        != isinstance(xt_model.pos_emb, _xt_classes().always),
    }
    refused = [name for name, on in checks.items() if on]
    if refused:
        raise ValueError(f"xtlab does not model these x-transformers TransformerWrapper features: {refused}")
