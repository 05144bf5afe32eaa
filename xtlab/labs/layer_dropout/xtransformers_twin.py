"""The same experiment on the x-transformers package, at the same size, and the one difference it shows.

x-transformers skips a block when ``random() < layer_dropout``, with Python's ``random`` module; xtlab draws the
skips with torch's RNG. So ``torch.manual_seed`` reproduces xtlab's skips but not x-transformers': for those,
Python's ``random.seed`` is what counts. x-transformers does not report which blocks it skipped, so this module
replays its Python draws to know them, and the gradients then confirm the replay.
"""

from __future__ import annotations

import functools
import inspect
import random
from collections.abc import Callable
from dataclasses import dataclass

import torch
import x_transformers
import x_transformers.x_transformers as x_module
from torch import nn

from xtlab._checks import check_int, check_probability
from xtlab.data import get_batch, load_corpus
from xtlab.device import resolve_device
from xtlab.diagnostics import record_gradient_presence
from xtlab.labs.layer_dropout.experiments import (
    BATCH_SIZE,
    BLOCK_PREFIX,
    DIM,
    HEADS,
    SEQ_LEN,
    LayerDropoutRun,
    build_model,
    make_optimizer,
)
from xtlab.seeding import seed_everything
from xtlab.threads import one_cpu_thread
from xtlab.training import lm_loss

XT_KINDS = {"a": "attn", "c": "cross", "f": "ff"}
XT_DEFAULT_DIM_HEAD: int = x_module.DEFAULT_DIM_HEAD  # x-transformers' head width when none is given


def build_xtransformers_model(vocab_size: int, depth: int, layer_dropout: float, seed: int = 0) -> nn.Module:
    """x-transformers' decoder at the lab's size: dim 32, 2 heads of 16 (its default head is 64 wide)."""
    seed_everything(seed)
    stack = x_transformers.Decoder(dim=DIM, depth=depth, heads=HEADS, attn_dim_head=DIM // HEADS,
                                   layer_dropout=layer_dropout)
    return x_transformers.TransformerWrapper(num_tokens=vocab_size, max_seq_len=SEQ_LEN, attn_layers=stack)


def parameter_count(model: nn.Module) -> int:
    """Number of trainable scalars (shared tensors counted once)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, but got {type(model).__name__}: {model!r:.80}")
    return sum(parameter.numel() for parameter in model.parameters() if parameter.requires_grad)


@dataclass(frozen=True)
class TwinSizes:
    """Parameter counts of the two libraries' models at the same settings (``dim_head``: the head width used)."""

    depth: int
    dim_head: int
    xtlab: int
    x_transformers: int


def twin_sizes(depth: int = 4) -> TwinSizes:
    """Build both models (no training) and count their parameters."""
    check_int("depth", depth, minimum=1)
    vocab_size = load_corpus().tokenizer.vocab_size
    saved = random.getstate(), torch.get_rng_state()
    try:
        ours = parameter_count(build_model(vocab_size, depth, 0.0))
        theirs = parameter_count(build_xtransformers_model(vocab_size, depth, 0.0))
    finally:
        random.setstate(saved[0])
        torch.set_rng_state(saved[1])
    return TwinSizes(depth, DIM // HEADS, ours, theirs)


def _replayed_skips(state: object, steps: int, layer_dropout: float, labels: tuple[str, ...]):
    """The blocks x-transformers skips at each step, from a copy of Python's random state: one ``random()`` per
    block and forward pass, in order, skip when it is below ``layer_dropout``."""
    replay = random.Random()
    replay.setstate(state)
    return tuple(tuple(label for label in labels if replay.random() < layer_dropout) for _ in range(steps))


def run_xtransformers_layer_dropout(layer_dropout: float = 0.1, depth: int = 4, steps: int = 60, seed: int = 0,
                                    device=None) -> LayerDropoutRun:
    """:func:`run_layer_dropout`'s experiment on x-transformers' model: same size, data, optimizer and seed.

    ``reported_skips`` are the skips implied by replaying Python's ``random()`` from its state when training
    started (x-transformers reports none); :func:`check_skip_gradient_link` then tests that replay.
    """
    check_probability("layer_dropout", layer_dropout)
    check_int("depth", depth, minimum=1)
    check_int("steps", steps, minimum=1)
    check_int("seed", seed, minimum=0)
    return _run(float(layer_dropout), depth, steps, seed, resolve_device(device))


@functools.lru_cache(maxsize=8)
def _run(layer_dropout: float, depth: int, steps: int, seed: int, device: torch.device) -> LayerDropoutRun:
    corpus = load_corpus()
    with one_cpu_thread():
        model = build_xtransformers_model(corpus.tokenizer.vocab_size, depth, layer_dropout, seed).to(device)
        model.train()
        optimizer = make_optimizer(model)
        batches = torch.Generator().manual_seed(seed)
        labels = tuple(f"{BLOCK_PREFIX}{i}" for i in range(len(model.attn_layers.layers)))
        start_state = random.getstate()

        def train_step(step: int) -> torch.Tensor:
            loss = lm_loss(model, get_batch(corpus.train, BATCH_SIZE, SEQ_LEN, batches, device))
            loss.backward()
            optimizer.step()
            return loss

        presence = record_gradient_presence(model, train_step, steps)
    kinds = tuple(XT_KINDS[kind] for kind in model.attn_layers.layer_types)
    return LayerDropoutRun(layer_dropout, depth, steps, seed, "train", 0.0, presence,
                           _replayed_skips(start_state, steps, layer_dropout, labels), labels, kinds,
                           library="x-transformers")


def _xtlab_skips(model: nn.Module) -> Callable[[], tuple[str, ...]]:
    return lambda: tuple(model.skipped_blocks)


def _xtransformers_skips(model: nn.Module) -> Callable[[], tuple[str, ...]]:
    """Forward hooks on every block's branch: the blocks that did not run in the last forward pass."""
    ran: set[int] = set()
    layers = model.attn_layers.layers
    for index, (_, branch, _) in enumerate(layers):
        branch.register_forward_hook(lambda module, args, output, index=index: ran.add(index))

    def skipped() -> tuple[str, ...]:
        result = tuple(f"{BLOCK_PREFIX}{i}" for i in range(len(layers)) if i not in ran)
        ran.clear()
        return result

    return skipped


@dataclass(frozen=True)
class SeedingOutcome:
    """Two runs of the same forward passes, each after the same seeding call: how many passes skipped alike.

    Attributes:
        library: ``"xtlab"`` or ``"x-transformers"``. seeding: the call made before each run.
        passes: forward passes per run. same_passes: passes whose skipped blocks were the same in both runs.
    """

    library: str
    seeding: str
    passes: int
    same_passes: int

    @property
    def reproduced(self) -> bool:
        return self.same_passes == self.passes


def seeding_outcomes(layer_dropout: float = 0.3, depth: int = 4, passes: int = 20, seed: int = 0
                     ) -> tuple[SeedingOutcome, ...]:
    """Does ``torch.manual_seed(seed)`` (or ``random.seed(seed)``) before a run reproduce the skips of each library?

    For each library and each seeding call, two runs of ``passes`` training-mode forward passes are made, each
    preceded by the seeding call alone (as a user would do), and their skips compared. Python's and torch's
    global random states are put back afterwards; Python's is set to ``seed`` first, so the result is the same
    whatever ran before.
    """
    check_probability("layer_dropout", layer_dropout)
    check_int("depth", depth, minimum=1)
    check_int("passes", passes, minimum=1)
    check_int("seed", seed, minimum=0)
    vocab_size = load_corpus().tokenizer.vocab_size
    saved = random.getstate(), torch.get_rng_state()
    try:
        random.seed(seed)
        builders = (("xtlab", build_model, _xtlab_skips),
                    ("x-transformers", build_xtransformers_model, _xtransformers_skips))
        seedings = ((f"torch.manual_seed({seed})", torch.manual_seed), (f"random.seed({seed})", random.seed))
        outcomes = []
        with one_cpu_thread(), torch.no_grad():
            for library, build, skips_of in builders:
                model = build(vocab_size, depth, layer_dropout)
                model.train()
                read_skips = skips_of(model)
                x = torch.zeros(1, 4, dtype=torch.long)
                for seeding, seed_fn in seedings:
                    runs = []
                    for _ in range(2):
                        seed_fn(seed)
                        runs.append([(model(x), read_skips())[1] for _ in range(passes)])
                    same = sum(a == b for a, b in zip(*runs, strict=True))
                    outcomes.append(SeedingOutcome(library, seeding, passes, same))
    finally:
        random.setstate(saved[0])
        torch.set_rng_state(saved[1])
    return tuple(outcomes)


@dataclass(frozen=True)
class SourceLine:
    """One line of a library's source: the file (from the package folder down), its number and its text."""

    path: str
    number: int
    text: str

    def __str__(self) -> str:
        return f"{self.path}, line {self.number}: {self.text.strip()}"


def xtransformers_skip_line() -> SourceLine:
    """The line of x-transformers' ``AttentionLayers.forward`` that decides a skip, found in its source."""
    lines, first = inspect.getsourcelines(x_transformers.x_transformers.AttentionLayers.forward)
    for number, line in enumerate(lines, start=first):
        if "layer_dropout" in line and "random()" in line:
            path = inspect.getsourcefile(x_module) or ""
            return SourceLine(path[path.index("x_transformers"):], number, line.rstrip())
    raise LookupError("no line of x_transformers.AttentionLayers.forward compares random() with layer_dropout")


def xtransformers_draws_with_python_random() -> bool:
    """Is the ``random`` that x-transformers' module calls Python's ``random.random``?"""
    return getattr(x_module, "random", None) is random.random
