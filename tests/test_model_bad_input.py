"""Every mistake a learner will make gets a clear error naming the bad value."""

import pytest
import torch

from xtlab import Decoder, Encoder, TiedLinear, TransformerWrapper
from xtlab.model.norms import LayerNorm
from xtlab.model.rotary import RotaryEmbedding, memory_positions

CONSTRUCTORS = [
    (lambda: Decoder(30, 2, 4), ValueError, "dim=30, heads=4"),
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
    (lambda: Decoder(24, 1, 8, rotary_pos_emb=True), ValueError, "dim // heads = 3"),
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
