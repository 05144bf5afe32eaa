"""Exercise: write the mechanism, one residual block's forward pass with layer dropout.

``layer_dropout_block(block, x, p, training, generator)`` gets one of the library's blocks (``block.norm`` and
``block.fn``), the residual stream ``x``, the skip probability and a ``torch.Generator``. In training it draws
``u = torch.rand(1, generator=generator)`` and, when ``u < p``, returns ``x`` without running the block; otherwise
(and always in eval mode) it returns ``x + block.fn(block.norm(x))``. That is what the library's
``AttentionLayers.forward`` does block by block, with ``torch.rand(len(blocks)) < p`` drawn at once (the same
numbers, in the same order, as one ``torch.rand(1)`` per block).

The checker builds the lab's tiny decoder, copies its blocks, and compares the learner's outputs, skips and
gradients with the library's arithmetic under fixed-seed generators (never the global RNG).
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable

import torch

from xtlab.course import Verdict, call, describe
from xtlab.labs.layer_dropout.experiments import build_model
from xtlab.model import Block

_DEPTH, _VOCAB, _SEED = 2, 11, 0
_P_TRAIN, _TRAIN_CALLS, _P_EVAL = 0.5, 16, 0.99


class _BlockForChecking(Block):
    """A copy of a library block whose own call explains itself: a ``Block`` has no ``forward`` of its own."""

    def forward(self, *args, **kwargs):
        raise TypeError("a Block has no forward of its own: compute the branch as block.fn(block.norm(x)) and add x")


def _library_blocks() -> list[Block]:
    """The blocks of the lab's decoder (attention, feed-forward, ...), built without touching the global RNGs."""
    python_state = random.getstate()
    try:
        with torch.random.fork_rng(devices=[]):  # build_model seeds torch's global RNG: put it back afterwards
            model = build_model(_VOCAB, _DEPTH, 0.0, seed=_SEED)
    finally:
        random.setstate(python_state)
    return list(model.attn_layers.layers)


def _copy_for_learner(block: Block) -> Block:
    twin = copy.deepcopy(block)
    twin.__class__ = _BlockForChecking
    return twin


def _full(block: Block, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return x + block.fn(block.norm(x))


def _run_learner(layer_dropout_block: Callable, block: Block, x: torch.Tensor, p: float, training: bool,
                 generator: torch.Generator):
    """The learner's output (detached) and whether any of the block's parameters got a gradient."""
    twin = _copy_for_learner(block)
    stream = x.clone().requires_grad_(True)
    twin.train(training)
    out = call(layer_dropout_block, twin, stream, p, training, generator, copy_args=False)
    if not isinstance(out, torch.Tensor):
        return out, None
    if out.requires_grad:
        out.float().sum().backward()
    got_gradient = any(parameter.grad is not None for parameter in twin.parameters())
    return out.detach(), got_gradient


def _describe_call(index: int, block: Block, p: float, training: bool) -> str:
    return f"layer_dropout_block(block {index} ({block.kind}), x, p={p}, training={training}, generator)"


def _shape_problem(out, x: torch.Tensor, where: str) -> str | None:
    if not isinstance(out, torch.Tensor):
        return f"{where} returned {describe(out)}; return a tensor shaped like x {tuple(x.shape)}"
    if out.shape != x.shape:
        return f"{where} returned shape {tuple(out.shape)}; return a tensor shaped like x {tuple(x.shape)}"
    return None


def check_layer_dropout_block(layer_dropout_block: Callable) -> Verdict:
    """Check ``layer_dropout_block(block, x, p, training, generator)`` against the library's blocks."""
    blocks = _library_blocks()
    x = torch.randn(2, 5, _width(blocks), generator=torch.Generator().manual_seed(1))
    hint_math = "a block that runs returns x + block.fn(block.norm(x)): the residual stream plus the branch"

    # 1. eval mode: never skip, whatever p
    for index, block in enumerate(blocks):
        where = _describe_call(index, block, _P_EVAL, False)
        out, _ = _run_learner(layer_dropout_block, block, x, _P_EVAL, False, torch.Generator().manual_seed(2))
        problem = _shape_problem(out, x, where)
        if problem:
            return Verdict.make_try_again(problem, hint_math)
        expected = _full(block, x)
        if torch.equal(out, x):
            return Verdict.make_try_again(f"{where} returned x unchanged: it skipped the block in eval mode",
                                     "layer dropout skips only in training; with training=False every block runs")
        mismatch = _math_problem(out, x, expected, block, _P_EVAL, where)
        if mismatch:
            return Verdict.make_try_again(mismatch, hint_math)

    # 2. training, fixed-seed draws: the library's skips and outputs, and no gradient for a skipped block
    learner_gen, library_gen = torch.Generator().manual_seed(_SEED + 3), torch.Generator().manual_seed(_SEED + 3)
    expected_skips, learner_skips = [], []
    for call_index in range(_TRAIN_CALLS):
        index = call_index % len(blocks)
        block = blocks[index]
        where = _describe_call(index, block, _P_TRAIN, True) + f" (call {call_index + 1} with one generator)"
        skip = bool(torch.rand(1, generator=library_gen) < _P_TRAIN)
        out, got_gradient = _run_learner(layer_dropout_block, block, x, _P_TRAIN, True, learner_gen)
        problem = _shape_problem(out, x, where)
        if problem:
            return Verdict.make_try_again(problem, hint_math)
        expected = x if skip else _full(block, x)
        if torch.allclose(out, torch.zeros_like(x)) and skip:
            return Verdict.make_try_again(f"{where} returned zeros for a skipped block",
                                     "a skipped block is the identity: the residual stream x passes through unchanged")
        learner_skipped = torch.equal(out, x)
        expected_skips.append(skip)
        learner_skips.append(learner_skipped)
        if learner_skipped != skip:
            continue  # judged on the whole pattern below
        if not skip:
            mismatch = _math_problem(out, x, expected, block, _P_TRAIN, where)
            if mismatch:
                return Verdict.make_try_again(mismatch, hint_math)
        elif got_gradient:
            return Verdict.make_try_again(
                f"{where}: the output equals x but the block's parameters got a gradient (zeros, not None): the "
                "block still ran, its branch multiplied by 0",
                "skip means not calling block.fn at all: `return x` before running it, so its .grad stays None")
    if learner_skips != expected_skips:
        inverted = [not skip for skip in expected_skips]
        if learner_skips == inverted:
            return Verdict.make_try_again(
                f"your skips are the exact opposite of the library's over {_TRAIN_CALLS} calls: "
                                     "you skip when u >= p (probability 1 - p)",
                                     "skip when u < p, so that a block is skipped with probability p")
        return Verdict.make_try_again(
            f"over {_TRAIN_CALLS} training calls with p={_P_TRAIN} you skipped at calls "
            f"{[i + 1 for i, s in enumerate(learner_skips) if s]}, but the draws of the generator you were given say "
            f"{[i + 1 for i, s in enumerate(expected_skips) if s]}",
            "draw u = torch.rand(1, generator=generator) once per call in training (not Python's random, not the "
            "global torch RNG) and skip when u < p")

    # 3. training with p = 0: never skip
    for index, block in enumerate(blocks):
        where = _describe_call(index, block, 0.0, True)
        out, _ = _run_learner(layer_dropout_block, block, x, 0.0, True, torch.Generator().manual_seed(4))
        problem = _shape_problem(out, x, where) or _math_problem(out, x, _full(block, x), block, 0.0, where)
        if problem:
            return Verdict.make_try_again(problem, hint_math)
    skipped = sum(expected_skips)
    return Verdict.make_pass(f"layer_dropout_block matches the library's blocks (attention and feed-forward): it never "
                          f"skips in eval mode or at p = 0, skips exactly when the generator's draw is below p "
                          f"({skipped} of {_TRAIN_CALLS} training calls), and a skipped block gets no gradient.")


def _width(blocks: list[Block]) -> int:
    return next(blocks[0].norm.parameters()).shape[0]


def _math_problem(out: torch.Tensor, x: torch.Tensor, expected: torch.Tensor, block: Block, p: float,
                  where: str) -> str | None:
    """None when ``out`` is the full block output, else what it looks like instead."""
    if torch.allclose(out, expected, atol=1e-5, rtol=1e-4):
        return None
    with torch.no_grad():
        branch = block.fn(block.norm(x))
        candidates = (
            (branch, "returned the branch alone, block.fn(block.norm(x)), without adding the residual stream x"),
            (x + branch / (1 - p) if p < 1 else None,
             f"scaled the branch by 1 / (1 - p) = {1 / (1 - p):.3g} as neuron dropout does; layer dropout (here and "
             "in x-transformers) does not rescale a block that runs"),
            (x + block.fn(x), "applied block.fn to x without block.norm first (the block is pre-norm)"),
            (block.norm(x + block.fn(x)), "normalised after the residual add (post-norm); the block is pre-norm"),
        )
    for value, what in candidates:
        if value is not None and torch.allclose(out, value, atol=1e-5, rtol=1e-4):
            return f"{where} {what}"
    error = float((out - expected).abs().max())
    return f"{where} differs from x + block.fn(block.norm(x)) by up to {error:.3g}"


