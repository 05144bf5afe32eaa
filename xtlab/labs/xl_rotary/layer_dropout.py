"""Lab 03, layer dropout meets XL memories, in xtlab and live on the installed x-transformers.

Segment A runs in eval mode and returns one memory per attention layer. Segment B runs in training mode with
those memories and a seed for which layer dropout skips exactly one attention layer. Hooks record, without
changing anything, which memory each layer receives (by identity with the list passed in) and which layer's
hidden states each returned memory holds (by exact equality).

In x-transformers (``AttentionLayers.forward``) a dropped layer ``continue``s before it pops its memory and before
it records its hidden state, so the next layer pops the dropped layer's memory and the returned list is one
short, each entry holding the next layer's hidden states. xtlab records every memory, skipped or not.
"""

from __future__ import annotations

import inspect
import random
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

import torch
from torch import nn

from xtlab._checks import check_choice, check_int, check_probability
from xtlab.labs.xl_rotary.models import size_kwargs
from xtlab.model import Decoder, TransformerWrapper
from xtlab.seeding import seed_everything
from xtlab.threads import one_cpu_thread

LIBRARIES = ("xtlab", "x-transformers")
NUM_TOKENS, DIM, HEADS, SEGMENT_LEN = 64, 32, 2, 6
LOOP_STEPS = {  # what to find in x-transformers' layer loop, in the order the bug needs
    "layer dropout skips the layer": "random() < layer_dropout",
    "the layer pops its memory": "mems.pop(0)",
    "the layer records its hidden state": "hiddens.append(x)",
    "the memory is normalised at use": "layer_mem = pre_norm(layer_mem)",
}


def library_version(library: str) -> str:
    """The installed version of ``library`` ("xtlab" or "x-transformers")."""
    check_choice("library", library, LIBRARIES)
    try:
        return version(library)
    except PackageNotFoundError:
        return "not installed as a package"


def loop_lines() -> dict[str, tuple[int, str]]:
    """step of ``LOOP_STEPS`` -> (line number in the file, the line), read from the installed x-transformers."""
    from x_transformers.x_transformers import AttentionLayers

    lines, first = inspect.getsourcelines(AttentionLayers.forward)
    found = {}
    for step, text in LOOP_STEPS.items():
        hits = [(first + i, line.strip()) for i, line in enumerate(lines) if line.strip().startswith(text)
                or f" {text}" in line]
        if hits:
            found[step] = hits[0]
    return found


def predicted_skips(library: str, seed: int, num_blocks: int, layer_dropout: float) -> list[bool]:
    """The blocks a training forward pass will skip after ``seed_everything(seed)``: x-transformers draws
    ``random.random()`` per block, xtlab ``torch.rand(num_blocks)`` on the CPU."""
    check_choice("library", library, LIBRARIES)
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
    """A tiny rotary XL decoder of ``library``: dim 32, 2 heads (x-transformers keeps its default head size)."""
    seed_everything(0)
    if library == "xtlab":
        layers = Decoder(DIM, depth, HEADS, rotary_pos_emb=True, layer_dropout=layer_dropout, **size_kwargs(DIM, HEADS))
        return TransformerWrapper(NUM_TOKENS, 64, layers, max_mem_len=32)
    from x_transformers import Decoder as XDecoder
    from x_transformers import TransformerWrapper as XTransformerWrapper

    return XTransformerWrapper(num_tokens=NUM_TOKENS, max_seq_len=64, max_mem_len=32,
                               attn_layers=XDecoder(dim=DIM, depth=depth, heads=HEADS, rotary_pos_emb=True,
                                                    layer_dropout=layer_dropout))


class MemoryProbe:
    """Forward hooks on each attention layer: whether it ran, the hidden states it recorded, the memory it got.

    xtlab records the normed input of its attention block (even when skipped) and hands ``mem`` to the attention
    module; x-transformers records the input of the pre-norm and then passes the memory through that pre-norm, so
    the norm's second call in a layer is the memory.
    """

    def __init__(self, library: str, model: nn.Module):
        self.recorded: dict[int, torch.Tensor] = {}
        self.received: dict[int, torch.Tensor | None] = {}
        self.ran: set[int] = set()
        self.handles = []
        if library == "xtlab":
            attn_blocks = [b for b in model.attn_layers.layers if b.kind == "attn"]
            for k, block in enumerate(attn_blocks):
                self.handles.append(block.norm.register_forward_hook(self._xtlab_norm_hook(k)))
                self.handles.append(block.fn.register_forward_pre_hook(self._xtlab_attn_hook(k), with_kwargs=True))
        else:
            layers = model.attn_layers
            norms = [layers.layers[i][0][0] for i, kind in enumerate(layers.layer_types) if kind == "a"]
            for k, norm in enumerate(norms):
                self.handles.append(norm.register_forward_pre_hook(self._xt_norm_hook(k)))

    def _xtlab_norm_hook(self, k):
        def hook(module, args, output):
            self.recorded[k] = output.detach().clone()
        return hook

    def _xtlab_attn_hook(self, k):
        def hook(module, args, kwargs):
            self.ran.add(k)
            self.received[k] = kwargs.get("mem")
        return hook

    def _xt_norm_hook(self, k):
        def hook(module, args):
            if k in self.ran:  # the second call in this layer normalises the memory
                self.received[k] = args[0]
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


def same_object(tensor: torch.Tensor | None, candidates: list[torch.Tensor]) -> int | None:
    """The index of the candidate that *is* ``tensor`` (identity), or None."""
    return next((i for i, candidate in enumerate(candidates) if tensor is candidate), None)


def equal_to(tensor: torch.Tensor, candidates: dict[int, torch.Tensor] | list[torch.Tensor]) -> int | None:
    """The key of the candidate exactly equal to ``tensor`` (same shape, same values), or None."""
    items = candidates.items() if isinstance(candidates, dict) else enumerate(candidates)
    return next((key for key, c in items if c.shape == tensor.shape and torch.equal(c, tensor)), None)


@dataclass(frozen=True)
class MemoryRouting:
    """What one library's memories did in a training segment that dropped one attention layer.

    Attributes:
        library, version: the library and its installed version. num_attn_layers: L. seed: segment B's seed.
        dropped: attention layers that did not run in segment B (observed by hooks).
        received: per attention layer, the index of the memory (in the list passed in) it received, by identity;
            None when it received none or did not run.
        returned_count: how many memories segment B returned.
        returned_old: per returned memory, the index of the memory passed in that it continues (by value).
        returned_new: per returned memory, the attention layer whose segment-B hidden states it appended.
    """

    library: str
    version: str
    num_attn_layers: int
    seed: int
    dropped: tuple[int, ...]
    received: tuple[int | None, ...]
    returned_count: int
    returned_old: tuple[int | None, ...]
    returned_new: tuple[int | None, ...]

    @property
    def each_layer_gets_its_own(self) -> bool:
        """Every layer that ran got its own memory, and every layer's memory came back, its own history."""
        own = tuple(range(self.num_attn_layers))
        ran_own = all(self.received[k] == k for k in own if k not in self.dropped)
        return ran_own and self.returned_old == own and self.returned_new == own

    @property
    def misrouted(self) -> tuple[int, ...]:
        """Layers that ran with another layer's memory."""
        return tuple(k for k, got in enumerate(self.received) if k not in self.dropped and got != k)


def memory_routing(library: str = "x-transformers", dropped_layer: int = 0, depth: int = 3,
                   layer_dropout: float = 0.5) -> MemoryRouting:
    """Run segment A (eval) then segment B (training, ``dropped_layer`` skipped) on ``library``.

    Args:
        library: "xtlab" or "x-transformers". dropped_layer: the attention layer segment B should skip (a seed is
            searched for; the hooks report what really ran). depth: attention layers. layer_dropout: skip
            probability per block in segment B.
    """
    check_choice("library", library, LIBRARIES)
    check_int("depth", depth, minimum=1)
    check_probability("layer_dropout", layer_dropout)
    check_int("dropped_layer", dropped_layer, minimum=0)
    if dropped_layer >= depth:
        raise ValueError(f"dropped_layer must be < depth={depth}, but got {dropped_layer}")
    seed = seed_skipping(library, dropped_layer, depth, layer_dropout)
    model = build_model(library, depth, layer_dropout)
    tokens = torch.randint(0, NUM_TOKENS, (1, 2 * SEGMENT_LEN), generator=torch.Generator().manual_seed(1))
    segment_a, segment_b = tokens.split(SEGMENT_LEN, dim=1)
    probe = MemoryProbe(library, model)
    try:
        with torch.no_grad(), one_cpu_thread():
            model.eval()
            _, mems_a = model(segment_a, return_mems=True)
            mems_a = list(mems_a)
            probe.reset()
            model.train()
            seed_everything(seed)
            _, mems_b = model(segment_b, mems=mems_a, return_mems=True)
            model.eval()
    finally:
        probe.remove()
    dropped = tuple(k for k in range(depth) if k not in probe.ran)
    received = tuple(same_object(probe.received.get(k), mems_a) for k in range(depth))
    old = tuple(equal_to(mem[:, :-SEGMENT_LEN], mems_a) for mem in mems_b)
    new = tuple(equal_to(mem[:, -SEGMENT_LEN:], probe.recorded) for mem in mems_b)
    return MemoryRouting(library, library_version(library), depth, seed, dropped, received, len(mems_b), old, new)
