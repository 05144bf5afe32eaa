"""embedding_output_tie: one call answers "is the embedding tied to the output, truly?"."""

import copy

import pytest
import torch
from x_transformers import Decoder as XDecoder
from x_transformers import TransformerWrapper as XTransformerWrapper

from xtlab import Decoder, TransformerWrapper, tie_naively
from xtlab.diagnostics import TieStatus, embedding_output_tie, tensor_tie_status
from xtlab.model import tie_registered


def xtlab_lm(**kw):
    return TransformerWrapper(20, 8, Decoder(16, 1, 2), **kw)


def x_lm(tie):
    return XTransformerWrapper(num_tokens=20, max_seq_len=8, tie_embedding=tie,
                               attn_layers=XDecoder(dim=16, depth=1, heads=2))


def test_xtlab_styles():
    assert embedding_output_tie(xtlab_lm()) is TieStatus.UNTIED
    assert embedding_output_tie(xtlab_lm(tie_embedding=True)) is TieStatus.TIED
    assert embedding_output_tie(tie_naively(xtlab_lm())) is TieStatus.TIED
    assert embedding_output_tie(tie_registered(xtlab_lm())) is TieStatus.TIED


def test_half_tie_after_assign_load():
    model, source = tie_naively(xtlab_lm()), tie_naively(xtlab_lm())
    model.load_state_dict(source.state_dict(), assign=True)
    assert embedding_output_tie(model) is TieStatus.HALF_TIED


def test_x_transformers_functional_tie_and_its_deepcopy():
    assert embedding_output_tie(x_lm(tie=False)) is TieStatus.UNTIED
    tied = x_lm(tie=True)
    assert embedding_output_tie(tied) is TieStatus.TIED
    # the copied lambda still reads the original model's embedding, so the copy is not tied to its own
    assert embedding_output_tie(copy.deepcopy(tied)) is TieStatus.UNTIED


def test_tensor_tie_status():
    a = torch.nn.Parameter(torch.zeros(3))
    assert tensor_tie_status(a, a) is TieStatus.TIED
    assert tensor_tie_status(a, torch.nn.Parameter(a.data)) is TieStatus.HALF_TIED
    assert tensor_tie_status(a, torch.nn.Parameter(torch.zeros(3))) is TieStatus.UNTIED


@pytest.mark.parametrize("kwargs, error, match", [
    ({"embedding": "tok"}, ValueError, "'tok'"),
    ({"output": "head"}, ValueError, "'head'"),
    ({"embedding": "attn_layers"}, ValueError, "'attn_layers' has no .weight"),
])
def test_bad_names(kwargs, error, match):
    with pytest.raises(error, match=match):
        embedding_output_tie(xtlab_lm(), **kwargs)


def test_no_output_projection():
    with pytest.raises(ValueError, match="no output projection"):
        embedding_output_tie(TransformerWrapper(20, 8, Decoder(16, 1, 2), return_only_embed=True))


def test_tensor_tie_status_rejects_non_tensors():
    with pytest.raises(TypeError, match="list"):
        tensor_tie_status([1], torch.zeros(1))
