"""The transformer: small files, one concept each, named as in x-transformers."""

from xtlab.model.attention import CrossAttention, SelfAttention
from xtlab.model.attention_layers import AttentionLayers, Decoder, Encoder
from xtlab.model.block import Block
from xtlab.model.feedforward import FeedForward
from xtlab.model.norms import LayerNorm, RMSNorm, ScaleNorm
from xtlab.model.rotary import RotaryEmbedding, apply_rotary, memory_positions
from xtlab.model.tied_linear import RegisteredTiedLinear, TiedLinear, tie_naively, tie_registered
from xtlab.model.transformer_wrapper import TransformerWrapper
from xtlab.model.xtransformer import XTransformer

__all__ = [
    "AttentionLayers", "Block", "CrossAttention", "Decoder", "Encoder", "FeedForward", "LayerNorm", "RMSNorm",
    "RegisteredTiedLinear", "RotaryEmbedding", "ScaleNorm", "SelfAttention", "TiedLinear", "TransformerWrapper",
    "XTransformer", "apply_rotary", "memory_positions", "tie_naively", "tie_registered",
]
