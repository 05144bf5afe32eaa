"""Small models and module-level adapter functions for the report-card tests (spawned DDP ranks import them)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from xtlab.diagnostics.model_audit import ModelAdapter


class Head(nn.Module):
    """Embedding -> linear -> output, optionally tied naively and with a head that forward never uses."""

    def __init__(self, tie: bool = False, unused: bool = False):
        super().__init__()
        self.num_tokens = 10
        self.embed = nn.Embedding(10, 8)
        self.mix = nn.Linear(8, 8)
        self.out = nn.Linear(8, 10, bias=False)
        if tie:
            self.out.weight = self.embed.weight
        self.unused_head = nn.Linear(8, 2) if unused else None

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.out(torch.tanh(self.mix(self.embed(tokens))))


def head_batch(model, generator):
    return (torch.randint(0, 10, (2, 5), generator=generator),)


def head_loss(model, batch):
    logits = model(batch[0])
    return F.cross_entropy(logits.reshape(-1, 10), batch[0].reshape(-1))


def head_forward(model, batch):
    return model(batch[0])


def head_adapter(tie: bool = True) -> ModelAdapter:
    return ModelAdapter("Head", head_batch, head_loss, head_forward,
                        embedding="embed" if tie else None, output="out" if tie else None)


# --- nanoGPT's design: a tie by assignment, configure_optimizers by dimension, a print in it -----------------------

class NanoAttention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.c_attn = nn.Linear(dim, 3 * dim)
        self.c_proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = self.c_attn(x).split(c, dim=2)  # (b, t, c) each
        q, k, v = (z.view(b, t, self.heads, c // self.heads).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.c_proj(y.transpose(1, 2).reshape(b, t, c))


class NanoBlock(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.ln_1, self.attn = nn.LayerNorm(dim), NanoAttention(dim, heads)
        self.ln_2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class NanoGPT(nn.Module):
    """nanoGPT's GPT in miniature: ``wte.weight = lm_head.weight``, ``configure_optimizers`` decays every
    parameter with dim >= 2 (embeddings included) and prints its counts."""

    def __init__(self, vocab_size: int = 24, block_size: int = 8, dim: int = 16, heads: int = 2, depth: int = 2):
        super().__init__()
        self.block_size = block_size
        self.vocab_size = vocab_size
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(vocab_size, dim), wpe=nn.Embedding(block_size, dim),
            h=nn.ModuleList([NanoBlock(dim, heads) for _ in range(depth)]), ln_f=nn.LayerNorm(dim)))
        self.lm_head = nn.Linear(dim, vocab_size, bias=False)
        self.transformer.wte.weight = self.lm_head.weight  # the tie, as nanoGPT writes it

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(idx.shape[1], device=idx.device)
        x = self.transformer.wte(idx) + self.transformer.wpe(positions)  # (b, t, dim)
        for block in self.transformer.h:
            x = block(x)
        return self.lm_head(self.transformer.ln_f(x))  # (b, t, vocab)

    def configure_optimizers(self, weight_decay, learning_rate, betas, device_type):
        params = {name: p for name, p in self.named_parameters() if p.requires_grad}
        decay = [p for p in params.values() if p.dim() >= 2]
        no_decay = [p for p in params.values() if p.dim() < 2]
        print(f"num decayed parameter tensors: {len(decay)}, num non-decayed: {len(no_decay)}")
        return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                                  {"params": no_decay, "weight_decay": 0.0}], lr=learning_rate, betas=betas)


def nano_batch(model, generator):
    return (torch.randint(0, model.vocab_size, (2, model.block_size), generator=generator),)


def nano_loss(model, batch):
    tokens = batch[0]
    logits = model(tokens[:, :-1])
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1))


def nano_forward(model, batch):
    return model(batch[0])


def nano_adapter(model=None) -> ModelAdapter:
    return ModelAdapter("nanoGPT-style GPT", nano_batch, nano_loss, nano_forward,
                        embedding="transformer.wte", output="lm_head")


def build_nano_gpt() -> NanoGPT:
    torch.manual_seed(0)
    return NanoGPT()


# --- minGPT's design: whitelist/blacklist groups, a lambda over submodules ----------------------------------------

class MinBlock(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.ln_1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.ln_2 = nn.LayerNorm(dim)
        self.mlp = nn.ModuleDict(dict(c_fc=nn.Linear(dim, 4 * dim), c_proj=nn.Linear(4 * dim, dim), act=nn.GELU()))
        m = self.mlp
        self.mlpf = lambda x: m.c_proj(m.act(m.c_fc(x)))  # minGPT's MLP forward: a lambda over the submodules

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = x.shape[1]
        mask = torch.triu(torch.ones(t, t, dtype=torch.bool, device=x.device), diagonal=1)
        h = self.ln_1(x)
        x = x + self.attn(h, h, h, attn_mask=mask, need_weights=False)[0]
        return x + self.mlpf(self.ln_2(x))


class MinGPT(nn.Module):
    """minGPT's GPT in miniature: no tie; ``configure_optimizers(train_config)`` decays Linear weights only
    (whitelist), never LayerNorm/Embedding weights or biases (blacklist), and asserts every parameter is placed."""

    def __init__(self, vocab_size: int = 24, block_size: int = 8, dim: int = 16, heads: int = 2, depth: int = 2):
        super().__init__()
        self.block_size, self.vocab_size = block_size, vocab_size
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(vocab_size, dim), wpe=nn.Embedding(block_size, dim),
            h=nn.ModuleList([MinBlock(dim, heads) for _ in range(depth)]), ln_f=nn.LayerNorm(dim)))
        self.lm_head = nn.Linear(dim, vocab_size, bias=False)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(idx.shape[1], device=idx.device)
        x = self.transformer.wte(idx) + self.transformer.wpe(positions)
        for block in self.transformer.h:
            x = block(x)
        return self.lm_head(self.transformer.ln_f(x))

    def configure_optimizers(self, train_config):
        decay, no_decay = set(), set()
        whitelist, blacklist = (nn.Linear,), (nn.LayerNorm, nn.Embedding)
        for module_name, module in self.named_modules():
            for name, _ in module.named_parameters(recurse=False):
                full = f"{module_name}.{name}" if module_name else name
                if name.endswith("bias"):
                    no_decay.add(full)
                elif name.endswith("weight") and isinstance(module, whitelist):
                    decay.add(full)
                elif name.endswith("weight") and isinstance(module, blacklist):
                    no_decay.add(full)
                else:  # MultiheadAttention's in_proj_weight: minGPT's own attention is Linear layers
                    decay.add(full)
        params = dict(self.named_parameters())
        assert not decay & no_decay and decay | no_decay == set(params)
        groups = [{"params": [params[n] for n in sorted(decay)], "weight_decay": train_config.weight_decay},
                  {"params": [params[n] for n in sorted(no_decay)], "weight_decay": 0.0}]
        return torch.optim.AdamW(groups, lr=train_config.learning_rate, betas=train_config.betas)


def min_adapter(model=None) -> ModelAdapter:
    return ModelAdapter("minGPT-style GPT", nano_batch, nano_loss, nano_forward)


def build_min_gpt() -> MinGPT:
    torch.manual_seed(0)
    return MinGPT()


# --- x-transformers: a decoder with per-layer layer dropout, and an encoder-decoder --------------------------------

PER_LAYER_DROPOUT = (0.1, 0.2, 0.3, 0.4)  # one value per layer (attention, feed-forward, attention, feed-forward)


def build_x_decoder():
    from x_transformers import Decoder, TransformerWrapper

    torch.manual_seed(0)
    return TransformerWrapper(num_tokens=20, max_seq_len=8, max_mem_len=4, tie_embedding=True,
                              attn_layers=Decoder(dim=16, depth=2, heads=2, attn_dim_head=8, rotary_pos_emb=True,
                                                  layer_dropout=PER_LAYER_DROPOUT, verbose=False))


def build_x_encoder_decoder():
    from x_transformers import XTransformer

    torch.manual_seed(0)
    return XTransformer(dim=16, enc_num_tokens=20, enc_depth=1, enc_heads=2, enc_max_seq_len=8, dec_num_tokens=20,
                        dec_depth=1, dec_heads=2, dec_max_seq_len=8, tie_token_emb=True, enc_attn_dim_head=8,
                        dec_attn_dim_head=8)


def encoder_decoder_batch(model, generator):
    source = torch.randint(0, 20, (2, 8), generator=generator)
    target = torch.randint(0, 20, (2, 8), generator=generator)
    return source, target


def encoder_decoder_loss(model, batch):
    return model(*batch)  # XTransformer returns the decoder's next-token loss


def encoder_decoder_get_layer_dropout(model):
    return float(max(model.decoder.net.attn_layers.layer_dropouts))


def encoder_decoder_set_layer_dropout(model, p):
    layers = model.decoder.net.attn_layers
    layers.layer_dropouts = (float(p),) * len(layers.layer_dropouts)


def encoder_decoder_adapter(model=None) -> ModelAdapter:
    return ModelAdapter("x-transformers XTransformer", encoder_decoder_batch, encoder_decoder_loss,
                        get_layer_dropout=encoder_decoder_get_layer_dropout,
                        set_layer_dropout=encoder_decoder_set_layer_dropout)


# --- adapters with the mistakes people make, and a model that raises ----------------------------------------------

def attribute_loss(model, batch):
    """Reads ``model.vocab_size``: fine on the model, an AttributeError on the DDP wrapper."""
    tokens = batch[0]
    logits = model(tokens[:, :-1])
    return F.cross_entropy(logits.reshape(-1, model.vocab_size), tokens[:, 1:].reshape(-1))


def typo_loss(model, batch):
    logits = model(batch[0])
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch[1].reshape(-1))  # the batch has one item


class RaisesInTraining(NanoGPT):
    """A model whose forward raises in training mode only: its own bug, not the adapter's."""

    def forward(self, idx):
        if self.training:
            raise RuntimeError("the model's own bug")
        return super().forward(idx)


def hf_batch(model, generator):
    return (torch.randint(0, model.config.vocab_size, (2, model.config.n_positions), generator=generator),)


def hf_loss(model, batch):
    return model(input_ids=batch[0], labels=batch[0]).loss


def hf_adapter(model=None) -> ModelAdapter:
    """Hugging Face GPT2LMHeadModel: the tie is ``lm_head.weight = transformer.wte.weight``."""
    return ModelAdapter("Hugging Face GPT-2", hf_batch, hf_loss, embedding="transformer.wte", output="lm_head")
