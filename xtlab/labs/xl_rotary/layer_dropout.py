"""Lab 03, item 5: layer dropout meets XL memories, in xtlab and in the real x-transformers.

Segment 1 runs in training mode with a seed that makes layer dropout skip one attention layer; segment 2
runs in eval mode (no dropout) with the memories segment 1 returned. Hooks record, without changing
anything, which hidden states each returned memory holds and which memory each layer then receives.
Memories are matched by exact equality (``torch.equal``), so the routing is observed, not inferred.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch
from torch import nn

from xtlab._checks import check_int, check_probability
from xtlab.model import Decoder, TransformerWrapper
from xtlab.seeding import seed_everything
from xtlab.threads import one_cpu_thread

LIBRARIES = ("xtlab", "x-transformers")
NUM_TOKENS, DIM, HEADS, SEGMENT_LEN = 64, 32, 2, 6


@dataclass(frozen=True)
class MemoryRouting:
    """What one library's memories did when layer dropout skipped an attention layer.

    Attributes:
        library: "xtlab" or "x-transformers". num_attn_layers: L. seed: the seed segment 1 ran with.
        skipped_first: attention layers that did not run in segment 1 (observed by hooks).
        returned_counts: how many memories each of the three segments returned.
        sources: for each memory returned by segment 1, the attention layer whose hidden states it holds.
        received_from: for each attention layer in segment 2, the layer that recorded the memory it received
            (None: it received no memory).
    """

    library: str
    num_attn_layers: int
    seed: int
    skipped_first: tuple[int, ...]
    returned_counts: tuple[int, ...]
    sources: tuple[int | None, ...]
    received_from: tuple[int | None, ...]

    @property
    def each_layer_gets_its_own(self) -> bool:
        return self.received_from == tuple(range(self.num_attn_layers))


def predicted_skips(library: str, seed: int, num_blocks: int, layer_dropout: float) -> list[bool]:
    """The blocks a training forward pass will skip after ``seed_everything(seed)``: x-transformers draws
    ``random.random()`` per block, xtlab ``torch.rand(num_blocks)`` on the CPU."""
    if library == "x-transformers":
        rng = random.Random(seed)
        return [rng.random() < layer_dropout for _ in range(num_blocks)]
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(num_blocks, generator=generator) < layer_dropout).tolist()


def seed_skipping(library: str, attn_layer: int, depth: int, layer_dropout: float, max_seed: int = 10_000) -> int:
    """The smallest seed whose training pass skips exactly attention layer ``attn_layer`` and no other block."""
    target = [False] * (2 * depth)
    target[2 * attn_layer] = True  # blocks alternate attn, ff
    for seed in range(max_seed):
        if predicted_skips(library, seed, 2 * depth, layer_dropout) == target:
            return seed
    raise ValueError(f"no seed below {max_seed} skips only attention layer {attn_layer} at p={layer_dropout}")


def build_model(library: str, depth: int, layer_dropout: float) -> nn.Module:
    seed_everything(0)
    if library == "xtlab":
        return TransformerWrapper(NUM_TOKENS, 64, Decoder(DIM, depth, HEADS, rotary_pos_emb=True,
                                                          layer_dropout=layer_dropout), max_mem_len=32)
    from x_transformers import Decoder as XDecoder
    from x_transformers import TransformerWrapper as XTW

    return XTW(num_tokens=NUM_TOKENS, max_seq_len=64, max_mem_len=32,
               attn_layers=XDecoder(dim=DIM, depth=depth, heads=HEADS, rotary_pos_emb=True,
                                    layer_dropout=layer_dropout))


class MemoryProbe:
    """Forward hooks on each attention layer: the hidden states it records and the memory it is given.

    xtlab records the normed input of its attention block (even when skipped) and hands ``mem`` to the
    attention module; x-transformers records the input of the pre-norm and passes the memory through the
    same pre-norm, so the norm's second call in a layer is the memory.
    """

    def __init__(self, library: str, model: nn.Module):
        self.recorded: dict[int, torch.Tensor] = {}
        self.received: dict[int, torch.Tensor | None] = {}
        self.ran: set[int] = set()
        self.handles = []
        if library == "xtlab":
            attn_blocks = [b for b in model.attn_layers.layers if b.kind == "attn"]
            for k, block in enumerate(attn_blocks):
                self.handles.append(block.norm.register_forward_hook(self.xtlab_norm_hook(k)))
                self.handles.append(block.fn.register_forward_pre_hook(self.xtlab_attn_hook(k), with_kwargs=True))
        else:
            layers = model.attn_layers
            norms = [layers.layers[i][0][0] for i, kind in enumerate(layers.layer_types) if kind == "a"]
            for k, norm in enumerate(norms):
                self.handles.append(norm.register_forward_pre_hook(self.xt_norm_hook(k)))

    def xtlab_norm_hook(self, k):
        def hook(module, args, output):
            self.recorded[k] = output.detach().clone()
        return hook

    def xtlab_attn_hook(self, k):
        def hook(module, args, kwargs):
            self.ran.add(k)
            mem = kwargs.get("mem")
            self.received[k] = None if mem is None else mem.detach().clone()
        return hook

    def xt_norm_hook(self, k):
        def hook(module, args):
            if k in self.ran:  # the second call in this layer normalises the memory
                self.received[k] = args[0].detach().clone()
            else:
                self.ran.add(k)
                self.recorded[k] = args[0].detach().clone()
                self.received.setdefault(k, None)
        return hook

    def reset(self) -> None:
        self.recorded, self.received, self.ran = {}, {}, set()

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


def match(tensor: torch.Tensor | None, candidates: dict[int, torch.Tensor] | list[torch.Tensor]) -> int | None:
    """The key of the candidate exactly equal to ``tensor`` (None when tensor is None or nothing matches)."""
    if tensor is None:
        return None
    items = candidates.items() if isinstance(candidates, dict) else enumerate(candidates)
    for key, candidate in items:
        if candidate.shape == tensor.shape and torch.equal(candidate, tensor):
            return key
    return None


def memory_routing(library: str = "x-transformers", skipped_layer: int = 0, depth: int = 3,
                   layer_dropout: float = 0.5, seed: int | None = None) -> MemoryRouting:
    """Run the three-segment experiment on ``library`` and report what its memories did.

    Args:
        library: "xtlab" or "x-transformers". skipped_layer: the attention layer segment 1 should skip
            (a seed is searched for); ignored when ``seed`` is given.
        depth: attention layers. layer_dropout: the skip probability in segment 1.
    """
    if library not in LIBRARIES:
        raise ValueError(f"library must be one of {LIBRARIES}, but got {library!r}")
    check_int("depth", depth, minimum=1)
    check_probability("layer_dropout", layer_dropout)
    check_int("skipped_layer", skipped_layer, minimum=0)
    if skipped_layer >= depth:
        raise ValueError(f"skipped_layer must be < depth={depth}, but got {skipped_layer}")
    if seed is None:
        seed = seed_skipping(library, skipped_layer, depth, layer_dropout)
    model = build_model(library, depth, layer_dropout)
    tokens = torch.randint(0, NUM_TOKENS, (1, 3 * SEGMENT_LEN), generator=torch.Generator().manual_seed(1))
    segments = tokens.split(SEGMENT_LEN, dim=1)
    probe = MemoryProbe(library, model)
    try:
        with torch.no_grad(), one_cpu_thread():
            model.train()
            seed_everything(seed)
            _, mems1 = model(segments[0], return_mems=True)
            skipped = tuple(k for k in range(depth) if k not in probe.ran)
            sources = tuple(match(mem, probe.recorded) for mem in mems1)
            model.eval()
            probe.reset()
            _, mems2 = model(segments[1], mems=list(mems1), return_mems=True)
            received = tuple(sources[j] if (j := match(probe.received.get(k), list(mems1))) is not None else None
                             for k in range(depth))
            _, mems3 = model(segments[2], mems=list(mems2), return_mems=True)
    finally:
        probe.remove()
    return MemoryRouting(library, depth, seed, skipped, (len(mems1), len(mems2), len(mems3)), sources, received)
