"""Every mistake a learner will make gets a clear error naming the bad value."""

import pytest
import torch

from xtlab import Decoder, Encoder, TiedLinear, TransformerWrapper
from xtlab.model import (
    AttentionLayers,
    Block,
    CrossAttention,
    FeedForward,
    RegisteredTiedLinear,
    RMSNorm,
    ScaleNorm,
    SelfAttention,
    XTransformer,
    apply_rotary,
    tie_naively,
    tie_registered,
)
from xtlab.model.norms import LayerNorm
from xtlab.model.rotary import RotaryEmbedding, memory_positions

CONSTRUCTORS = [
    (lambda: Decoder(32, 2, 4, attn_dim_head=0), ValueError, "dim_head must be >= 1, but got 0"),
    (lambda: Decoder(32, 0, 4), ValueError, "depth must be >= 1, but got 0"),
    (lambda: Decoder(32, 2, 0), ValueError, "heads must be >= 1, but got 0"),
    (lambda: Decoder(32.0, 2, 4), TypeError, "32.0"),
    (lambda: Decoder(32, 2, 4, layer_dropout=1.0), ValueError, r"layer_dropout must be in \[0, 1\), but got 1.0"),
    (lambda: Decoder(32, 2, 4, layer_dropout=-0.1), ValueError, "-0.1"),
    (lambda: Decoder(32, 2, 4, attn_dropout=1.5), ValueError, "1.5"),
    (lambda: Decoder(32, 2, 4, attn_num_mem_kv=-1), ValueError, "attn_num_mem_kv must be >= 0, but got -1"),
    (lambda: Decoder(32, 2, 4, use_rmsnorm=True, use_scalenorm=True), ValueError, "both are True"),
    (lambda: Decoder(32, 2, 4, mem_positions="shifted"), ValueError, "'shifted'"),
    (lambda: Decoder(32, 2, 4, mem_record="late"), ValueError, "'late'"),
    (lambda: Decoder(24, 1, 8, attn_dim_head=6, rotary_pos_emb=True), ValueError, "rotary_emb_dim must be even.*3"),
    (lambda: Decoder(32, 1, 4, rotary_pos_emb=True, rotary_emb_dim=96), ValueError,
     "rotary_emb_dim must be <= 64, but got 96"),
    (lambda: Decoder(32, 1, 4, causal=False), TypeError, "Encoder"),
    (lambda: Encoder(32, 1, 4, causal=True), TypeError, "Decoder"),
    (lambda: TransformerWrapper(0, 16, Decoder(32, 1, 4)), ValueError, "num_tokens must be >= 1, but got 0"),
    (lambda: TransformerWrapper(10, 16, Decoder(32, 1, 4), max_mem_len=-5), ValueError, "-5"),
    (lambda: TransformerWrapper(10, 16, Decoder(32, 1, 4), num_memory_tokens=-1), ValueError, "-1"),
    (lambda: TransformerWrapper(10, 16, torch.nn.Linear(2, 2)), TypeError, "Linear"),
    (lambda: TransformerWrapper(10, 16, Decoder(32, 1, 4), tie_embedding=True, return_only_embed=True),
     ValueError, "return_only_embed"),
    (lambda: TiedLinear(torch.nn.ReLU()), TypeError, "ReLU"),
    (lambda: TiedLinear("embedding"), TypeError, "str"),
    (lambda: RotaryEmbedding(7), ValueError, "dim_head=7"),
    (lambda: memory_positions(2, 3, "backwards"), ValueError, "'backwards'"),
    (lambda: LayerNorm(0), ValueError, "dim must be >= 1, but got 0"),
]


@pytest.mark.parametrize("build, error, match", CONSTRUCTORS)
def test_constructor_rejects(build, error, match):
    with pytest.raises(error, match=match):
        build()


def lm(**kw):
    torch.manual_seed(0)
    cross = kw.pop("cross_attend", False)
    return TransformerWrapper(10, 8, Decoder(16, 2, 2, cross_attend=cross), max_mem_len=kw.pop("max_mem_len", 4), **kw)


X = torch.randint(0, 10, (2, 5))
FORWARDS = [
    (lambda: lm()(X.float()), TypeError, "torch.float32"),
    (lambda: lm()(X.tolist()), TypeError, "list"),
    (lambda: lm()(X[0]), ValueError, r"\(5,\)"),
    (lambda: lm()(torch.full((1, 3), 10)), ValueError, r"token id 10 is out of range: ids must be in \[0, 10\)"),
    (lambda: lm()(torch.full((1, 3), -1)), ValueError, "token id -1"),
    (lambda: lm()(torch.zeros(1, 9, dtype=torch.long)), ValueError, "sequence length 9 exceeds max_seq_len=8"),
    (lambda: lm()(X, mask=torch.ones(2, 4, dtype=torch.bool)), ValueError, r"\(2, 4\)"),
    (lambda: lm()(X, mask=torch.ones(2, 5)), TypeError, "torch.float32"),
    (lambda: lm()(X, mems=[torch.zeros(2, 3, 16)]), ValueError, "one tensor per attention layer \\(2\\), but got 1"),
    (lambda: lm()(X, mems=torch.zeros(2, 3, 16)), TypeError, "Tensor"),
    (lambda: lm()(X, mems=[torch.zeros(3, 3, 16)] * 2), ValueError, r"\(3, 3, 16\)"),
    (lambda: lm()(X, mems=[torch.zeros(2, 3, 8)] * 2), ValueError, r"dim=16.*\(2, 3, 8\)"),
    (lambda: lm()(X, mems=[torch.zeros(2, 3, 16)] * 2, mem_masks=torch.ones(2, 4, dtype=torch.bool)),
     ValueError, r"\(2, 4\)"),
    (lambda: lm()(X, mems=[torch.zeros(2, 3, 16)] * 2, mem_masks=torch.ones(2, 3)), TypeError, "float32"),
    (lambda: lm()(X, mem_masks=torch.ones(2, 3, dtype=torch.bool)), ValueError, "without mems"),
    (lambda: lm(cross_attend=True)(X), ValueError, "context"),
    (lambda: lm(cross_attend=True)(X, context=torch.zeros(2, 4, 8)), ValueError, r"\(2, 4, 8\)"),
    (lambda: lm()(X, context=torch.zeros(2, 4, 16)), ValueError, "cross_attend=False"),
    (lambda: lm(max_mem_len=0)(X, return_mems=True), ValueError, "max_mem_len=0"),
    (lambda: lm().generate(X, 0), ValueError, "seq_len must be >= 1, but got 0"),
    (lambda: lm().generate(X, 2, temperature=-1.0), ValueError, "-1.0"),
    (lambda: RotaryEmbedding(8)(torch.tensor([0.5])), TypeError, "float32"),
]


@pytest.mark.parametrize("call, error, match", FORWARDS)
def test_forward_rejects(call, error, match):
    with pytest.raises(error, match=match):
        call()


# ---- every public entry point of xtlab.model: (call, error type, text the message must contain) ----

NAN, INF = float("nan"), float("inf")
XT = dict(dim=32, enc_num_tokens=12, enc_depth=1, enc_heads=2, enc_max_seq_len=8, dec_num_tokens=12, dec_depth=1,
          dec_heads=2, dec_max_seq_len=8)


def xt(**kw):
    torch.manual_seed(0)
    return XTransformer(**(XT | kw))


def cross_lm():
    return lm(cross_attend=True)


def encoder_lm():
    return TransformerWrapper(10, 8, Encoder(16, 1, 2), return_only_embed=True)


def zeros(*shape, dtype=torch.float32, device="cpu"):
    return torch.zeros(*shape, dtype=dtype, device=device)


def bools(*shape, device="cpu"):
    return torch.ones(*shape, dtype=torch.bool, device=device)


EMB = torch.nn.Embedding(10, 4)
SA = SelfAttention(16, 2, causal=True)
CA = CrossAttention(16, 2)
ANGLES = RotaryEmbedding(8)(torch.arange(5))
MEMS = [zeros(2, 3, 16)] * 2

CONSTRUCTOR_CASES = [
    (lambda: Decoder(16, 2, 2, rotary_pos_emb="False"), TypeError, "rotary_pos_emb must be True or False, but got str"),
    (lambda: Decoder(16, 2, 2, cross_attend="yes"), TypeError, "cross_attend must be True or False"),
    (lambda: Decoder(16, 2, 2, use_rmsnorm=1), TypeError, "use_rmsnorm must be True or False, but got int: 1"),
    (lambda: Decoder(16, 2, 2, use_scalenorm=None), TypeError, "use_scalenorm"),
    (lambda: Decoder(16, 2, 2, norm_unit_offset=2), TypeError, "norm_unit_offset must be True or False, but got int"),
    (lambda: Decoder(16, 2, 2, mask_empty_mems="True"), TypeError, "mask_empty_mems"),
    (lambda: AttentionLayers(16, 2, 2, causal=1), TypeError, "causal must be True or False, but got int: 1"),
    (lambda: Encoder(16, 2, 2, rotary_pos_emb=0), TypeError, "rotary_pos_emb"),
    (lambda: Decoder(16, 2, 2, mem_positions="bogus"), ValueError, "'bogus'"),
    (lambda: Decoder(16, 2, 2, ff_mult=0), ValueError,
     "ff_mult must give an inner width int(dim * ff_mult) >= 1, but got ff_mult=0"),
    (lambda: Decoder(16, 2, 2, ff_dropout=5.0), ValueError, "ff_dropout must be in [0, 1), but got 5.0"),
    (lambda: Decoder(16, 2, 2, attn_dropout=NAN), ValueError, "attn_dropout must be a finite number, but got nan"),
    (lambda: Decoder(16, 2.0, 2), TypeError, "depth must be an int, but got float: 2.0"),
    (lambda: Decoder(16, 2, True), TypeError, "heads must be an int, but got bool"),
    (lambda: Decoder(-16, 2, 2), ValueError, "dim must be >= 1, but got -16"),
    (lambda: Decoder(16, 2, 2, attn_num_mem_kv=1.5), TypeError, "attn_num_mem_kv"),
    (lambda: Decoder(16, 2, 2, mem_record=None), ValueError, "mem_record must be one of"),
    (lambda: Decoder(16, 2, 2, layer_dropout="0.1"), TypeError, "layer_dropout must be a number, but got str"),
    (lambda: Decoder(16, 2, 2, unknown=1), TypeError, "unknown"),
    (lambda: TransformerWrapper(10, 8, Decoder(16, 1, 2), tie_embedding="True"), TypeError, "tie_embedding"),
    (lambda: TransformerWrapper(10, 8, Decoder(16, 1, 2), return_only_embed=1), TypeError, "return_only_embed"),
    (lambda: TransformerWrapper(10, 8, Decoder(16, 1, 2), emb_dropout=1.0), ValueError, "emb_dropout"),
    (lambda: TransformerWrapper(10.0, 8, Decoder(16, 1, 2)), TypeError, "num_tokens must be an int"),
    (lambda: TransformerWrapper(10, 0, Decoder(16, 1, 2)), ValueError, "max_seq_len must be >= 1, but got 0"),
    (lambda: TransformerWrapper(10, 8, None), TypeError, "attn_layers must be an xtlab Decoder or Encoder"),
    (lambda: SelfAttention(64, 0, causal=True), ValueError, "heads must be >= 1, but got 0"),
    (lambda: SelfAttention(64, 4, causal=True, dim_head=-1), ValueError, "dim_head must be >= 1, but got -1"),
    (lambda: SelfAttention(64, 4, causal="yes"), TypeError, "causal must be True or False"),
    (lambda: SelfAttention(64, 4, causal=True, dropout=5.0), ValueError, "dropout must be in [0, 1), but got 5.0"),
    (lambda: SelfAttention(64, 4, causal=True, mem_positions="bogus"), ValueError, "'bogus'"),
    (lambda: SelfAttention(64, 4, causal=True, num_mem_kv=-2), ValueError, "num_mem_kv must be >= 0, but got -2"),
    (lambda: SelfAttention(64, 4, causal=True, rotary=1), TypeError, "rotary must be True or False"),
    (lambda: SelfAttention(64, 4.0, causal=True), TypeError, "heads must be an int"),
    (lambda: SelfAttention(64, 4, causal=True, rotary=True, dropout=INF), ValueError, "dropout"),
    (lambda: CrossAttention(64, 0), ValueError, "heads must be >= 1, but got 0"),
    (lambda: CrossAttention(64, 2, dim_head=2.0), TypeError, "dim_head must be an int"),
    (lambda: CrossAttention(64, 2, dropout=-1), ValueError, "dropout must be in [0, 1), but got -1"),
    (lambda: FeedForward(0), ValueError, "dim must be >= 1, but got 0"),
    (lambda: FeedForward(8, mult=0), ValueError, "ff_mult must give an inner width"),
    (lambda: FeedForward(8, dropout=1.0), ValueError, "dropout must be in [0, 1), but got 1.0"),
    (lambda: FeedForward(8.0), TypeError, "dim must be an int"),
    (lambda: Block("mlp", torch.nn.Identity(), torch.nn.Identity()), ValueError, "kind must be one of"),
    (lambda: Block("ff", None, torch.nn.Identity()), TypeError, "norm must be a torch.nn.Module"),
    (lambda: Block("ff", torch.nn.Identity(), lambda x: x), TypeError, "fn must be a torch.nn.Module"),
    (lambda: LayerNorm(4, unit_offset=2), TypeError, "unit_offset must be True or False, but got int: 2"),
    (lambda: RMSNorm(-1), ValueError, "dim must be >= 1, but got -1"),
    (lambda: ScaleNorm("4"), TypeError, "dim must be an int, but got str"),
    (lambda: RotaryEmbedding(8, theta=NAN), ValueError, "theta must be a finite number, but got nan"),
    (lambda: RotaryEmbedding(8, theta=INF), ValueError, "theta must be a finite number, but got inf"),
    (lambda: RotaryEmbedding(8, theta=1.0), ValueError, "theta must be > 1, but got 1.0"),
    (lambda: RotaryEmbedding(8, theta="10000"), TypeError, "theta must be a number, but got str"),
    (lambda: RotaryEmbedding(0), ValueError, "dim_head must be >= 2, but got 0"),
    (lambda: TiedLinear(torch.nn.LayerNorm(4)), TypeError, "2-D .weight"),
    (lambda: TiedLinear(None), TypeError, "NoneType"),
    (lambda: RegisteredTiedLinear(torch.nn.ReLU()), TypeError, "ReLU"),
    (lambda: tie_naively(None), TypeError, "model must be a torch.nn.Module, but got NoneType"),
    (lambda: tie_naively(torch.nn.Linear(2, 2)), TypeError, "token_emb"),
    (lambda: tie_registered("model"), TypeError, "model must be a torch.nn.Module, but got str"),
    (lambda: memory_positions(-1, 3), ValueError, "num_mems must be >= 0, but got -1"),
    (lambda: memory_positions(2, 3.0), TypeError, "seq_len must be an int"),
    (lambda: memory_positions(2, 3, None), ValueError, "mode must be one of"),
    (lambda: xt(enc_depth=0), ValueError, "enc_depth must be >= 1, but got 0"),
    (lambda: xt(dec_attn_dim_head=0), ValueError, "dec_ arguments: dim_head must be >= 1, but got 0"),
    (lambda: xt(dim=0), ValueError, "dim must be >= 1, but got 0"),
    (lambda: xt(enc_num_tokens="12"), TypeError, "enc_num_tokens"),
    (lambda: xt(encoder_keeps_logits="no"), TypeError, "encoder_keeps_logits must be True or False"),
    (lambda: xt(dec_cross_attend=1), TypeError, "dec_cross_attend must be True or False"),
    (lambda: xt(enc_tie_embedding="yes"), TypeError, "enc_tie_embedding"),
    (lambda: xt(enc_layer_dropout=2.0), ValueError, "enc_ arguments: layer_dropout"),
    (lambda: xt(dec_rotary_pos_emb="True"), TypeError, "dec_ arguments: rotary_pos_emb"),
    (lambda: xt(dec_foo=1), TypeError, "XTransformer got an unknown keyword 'dec_foo'"),
]

FORWARD_CASES = [
    (lambda: lm()(X.to(torch.int8)), TypeError, "torch.int8"),
    (lambda: lm()(X.to(torch.uint8)), TypeError, "torch.uint8"),
    (lambda: lm()(X.to(torch.int16)), TypeError, "x must have dtype torch.int64 or torch.int32"),
    (lambda: lm()(X.bool()), TypeError, "torch.bool"),
    (lambda: lm()(X.to(torch.complex64)), TypeError, "torch.complex64"),
    (lambda: lm()(X.to("meta")), ValueError, "got a tensor on meta"),
    (lambda: lm()(X, mask=bools(2, 5, device="meta")), ValueError, "mask must be on device cpu"),
    (lambda: lm()(X, mems=[zeros(2, 3, 16, dtype=torch.float16)] * 2), TypeError, "torch.float16"),
    (lambda: lm()(X, mems=[zeros(2, 3, 16, dtype=torch.float64)] * 2), TypeError, "dtype torch.float32 (the model's"),
    (lambda: lm()(X, mems=[zeros(2, 3, 16, dtype=torch.long)] * 2), TypeError, "mems[0] must be a floating tensor"),
    (lambda: lm()(X, mems=[zeros(2, 3, 16, dtype=torch.bool)] * 2), TypeError, "torch.bool"),
    (lambda: lm()(X, mems=[zeros(2, 3, 16, device="meta")] * 2), ValueError, "mems[0] must be on device cpu"),
    (lambda: lm()(X, mems=[None, None]), TypeError, "mems[0] must be a torch.Tensor, but got NoneType"),
    (lambda: lm()(X, mems=(zeros(2, 3, 16),) * 3), ValueError, "but got 3"),
    (lambda: lm()(X, mems=MEMS, mem_masks=[bools(2, 3)]), ValueError, "a list of 2"),
    (lambda: lm()(X, mems=MEMS, mem_masks=bools(2, 3, device="meta")), ValueError, "mem_masks[0] must be on device"),
    (lambda: lm()(X, context_mask=bools(2, 3)), ValueError, "context_mask was given but this stack has cross_attend"),
    (lambda: cross_lm()(X, context=zeros(2, 3, 16, dtype=torch.float64)), TypeError, "torch.float64"),
    (lambda: cross_lm()(X, context=zeros(2, 3, 16, dtype=torch.long)), TypeError, "context must be a floating tensor"),
    (lambda: cross_lm()(X, context=zeros(2, 3, 16, dtype=torch.bool)), TypeError, "context"),
    (lambda: cross_lm()(X, context=zeros(2, 3, 16, device="meta")), ValueError, "context must be on device cpu"),
    (lambda: cross_lm()(X, context=zeros(3, 16)), ValueError, "(3, 16)"),
    (lambda: cross_lm()(X, context=zeros(4, 3, 16)), ValueError, "batch=2"),
    (lambda: cross_lm()(X, context=zeros(2, 3, 16).tolist()), TypeError, "context must be a torch.Tensor, but got"),
    (lambda: cross_lm()(X, context=zeros(2, 3, 16), context_mask=zeros(2, 3)), TypeError, "context_mask"),
    (lambda: cross_lm()(X, context=zeros(2, 3, 16), context_mask=bools(2, 4)), ValueError, "(2, 3)"),
    (lambda: lm()(X, return_mems="yes"), TypeError, "return_mems must be True or False"),
    (lambda: lm()(X, return_embeddings=1), TypeError, "return_embeddings must be True or False"),
    (lambda: lm().generate(X, 2, temperature=NAN), ValueError, "temperature must be a finite number, but got nan"),
    (lambda: lm().generate(X, 2, temperature=INF), ValueError, "temperature must be a finite number, but got inf"),
    (lambda: lm().generate(X, 2, temperature="1"), TypeError, "temperature must be a number, but got str"),
    (lambda: lm().generate(X, 2, temperature=True), TypeError, "temperature"),
    (lambda: lm().generate(X, 1.5), TypeError, "seq_len must be an int, but got float: 1.5"),
    (lambda: lm().generate(X.float(), 2), TypeError, "prompts must have dtype"),
    (lambda: lm().generate(X[:, :0], 2), ValueError, "n >= 1"),
    (lambda: lm().generate(X[0], 2), ValueError, "prompts must have shape (batch, seq_len)"),
    (lambda: lm().generate(X, 2, generator="seed"), TypeError, "generator must be a torch.Generator or None"),
    (lambda: lm().generate(torch.full((1, 2), 10), 2), ValueError, "token id 10 is out of range"),
    (lambda: encoder_lm().generate(X, 2), ValueError, "return_only_embed=True"),
    (lambda: Decoder(16, 1, 2)(zeros(2, 3, 8)), ValueError, "x must have shape (..., 16), but got shape (2, 3, 8)"),
    (lambda: Decoder(16, 1, 2)(zeros(2, 3, 16, dtype=torch.long)), TypeError, "x must be a floating tensor"),
    (lambda: Decoder(16, 1, 2)(zeros(3, 16)), ValueError, "(3, 16)"),
    (lambda: Decoder(16, 1, 2)(zeros(2, 3, 16), record_from=-1), ValueError, "record_from must be >= 0, but got -1"),
    (lambda: Decoder(16, 1, 2)(zeros(2, 3, 16), max_mem_len=-1), ValueError, "max_mem_len must be >= 0, but got -1"),
    (lambda: Decoder(16, 1, 2)(zeros(2, 3, 16), mask=zeros(2, 3)), TypeError, "mask must be a bool tensor"),
    (lambda: Decoder(16, 1, 2)(zeros(2, 3, 16), mems=zeros(2, 3, 16)), TypeError, "mems must be a list"),
    (lambda: SA(zeros(2, 3, 8)), ValueError, "x must have shape (..., 16), but got shape (2, 3, 8)"),
    (lambda: SA(zeros(3, 16)), ValueError, "(3, 16)"),
    (lambda: SA(zeros(2, 3, 16, dtype=torch.long)), TypeError, "x must be a floating tensor"),
    (lambda: SA(zeros(2, 3, 16), mem=zeros(2, 4, 16, dtype=torch.float64)), TypeError, "mem must have dtype"),
    (lambda: SA(zeros(2, 3, 16), mem=zeros(1, 4, 16)), ValueError, "batch=2"),
    (lambda: SA(zeros(2, 3, 16), key_mask=bools(2, 4)), ValueError, "key_mask must have shape (2, 3)"),
    (lambda: SA(zeros(2, 3, 16), key_mask=zeros(2, 3)), TypeError, "key_mask must be a bool tensor"),
    (lambda: SA.attention_weights(zeros(2, 3, 8)), ValueError, "x must have shape (..., 16)"),
    (lambda: SA.project("x"), TypeError, "x must be a torch.Tensor, but got str"),
    (lambda: CA(zeros(2, 3, 16), zeros(2, 4, 8)), ValueError, "context must have shape (..., 16)"),
    (lambda: CA(zeros(2, 3, 16), zeros(2, 4, 16, dtype=torch.float64)), TypeError, "context must have dtype"),
    (lambda: CA(zeros(2, 3, 16), zeros(2, 4, 16), bools(2, 3)), ValueError, "context_mask must have shape (2, 4)"),
    (lambda: CA(zeros(2, 3, 16), None), TypeError, "context must be a torch.Tensor, but got NoneType"),
    (lambda: FeedForward(8)(zeros(2, 4)), ValueError, "x must have shape (..., 8), but got shape (2, 4)"),
    (lambda: FeedForward(8)(zeros(2, 8, dtype=torch.long)), TypeError, "x must be a floating tensor"),
    (lambda: LayerNorm(4)(zeros(2, 3)), ValueError, "x must have shape (..., 4), but got shape (2, 3)"),
    (lambda: RMSNorm(4)(zeros(2, 3)), ValueError, "x must have shape (..., 4)"),
    (lambda: ScaleNorm(4)(zeros(2, 3)), ValueError, "x must have shape (..., 4)"),
    (lambda: LayerNorm(4)([0.0] * 4), TypeError, "x must be a torch.Tensor, but got list"),
    (lambda: RMSNorm(4)(zeros(4, dtype=torch.long)), TypeError, "x must be a floating tensor"),
    (lambda: TiedLinear(EMB)(zeros(2, 3)), ValueError, "x must have shape (..., 4), but got shape (2, 3)"),
    (lambda: TiedLinear(EMB)(zeros(2, 4, dtype=torch.long)), TypeError, "x must be a floating tensor"),
    (lambda: RegisteredTiedLinear(EMB)(zeros(2, 3)), ValueError, "x must have shape (..., 4)"),
    (lambda: apply_rotary(zeros(2, 5, 8), ANGLES[:4]), ValueError, "angles must have shape (n, d) = (5, 8)"),
    (lambda: apply_rotary(zeros(2, 5, 8), zeros(5, 4)), ValueError, "angles must have shape (..., 8)"),
    (lambda: apply_rotary(zeros(2, 5, 8, dtype=torch.long), ANGLES), TypeError, "x must be a floating tensor"),
    (lambda: apply_rotary(zeros(2, 5, 7), ANGLES), ValueError, "with an even d"),
    (lambda: apply_rotary(zeros(8), ANGLES), ValueError, "(8,)"),
    (lambda: apply_rotary(zeros(2, 5, 8), ANGLES.long()), TypeError, "angles must be a floating tensor"),
    (lambda: RotaryEmbedding(8)(torch.zeros(2, 2, dtype=torch.long)), ValueError, "positions must have 1 dimensions"),
    (lambda: RotaryEmbedding(8)([0, 1]), TypeError, "positions must be a torch.Tensor, but got list"),
    (lambda: xt()(torch.zeros(2, 8, dtype=torch.long), [[0, 1]]), TypeError, "tgt must be a torch.Tensor"),
    (lambda: xt()(torch.zeros(2, 8, dtype=torch.long), zeros(2, 4)), TypeError, "tgt must have dtype"),
    (lambda: xt()(torch.zeros(2, 8, dtype=torch.long), torch.full((2, 4), 12)), ValueError, "token id 12"),
    (lambda: xt()(torch.zeros(2, 8, dtype=torch.long), torch.zeros(3, 4, dtype=torch.long)), ValueError,
     "same batch size"),
    (lambda: xt()(torch.zeros(2, 8, dtype=torch.long), torch.zeros(2, 4, dtype=torch.long), mask=bools(2, 7)),
     ValueError, "mask must have shape (2, 8)"),
    (lambda: xt()(zeros(2, 8), torch.zeros(2, 4, dtype=torch.long)), TypeError, "src must have dtype"),
    (lambda: xt().generate(torch.zeros(2, 8, dtype=torch.long), torch.zeros(2, 1, dtype=torch.long), 2,
                           temperature=NAN), ValueError, "temperature must be a finite number"),
    (lambda: xt().generate(torch.zeros(2, 8, dtype=torch.long), torch.zeros(3, 1, dtype=torch.long), 2),
     ValueError, "same batch size"),
]


@pytest.mark.parametrize("call, error, needle", CONSTRUCTOR_CASES + FORWARD_CASES)
def test_bad_input_is_refused_with_a_message_that_names_it(call, error, needle):
    with pytest.raises(error) as caught:
        call()
    assert needle in str(caught.value)
