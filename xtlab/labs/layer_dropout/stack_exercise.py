"""Exercise: the forward pass of a stack of pre-norm residual blocks with layer dropout.

``layer_dropout_stack(blocks, x, p, training, generator) -> (out, ran)``: in training, one number per block is
drawn from ``generator`` in block order (``torch.rand(len(blocks), generator=generator)``, the same numbers as one
``torch.rand(1, generator=generator)`` per block) and block ``i`` is skipped when its number is below its
probability (``p`` is one float for every block or a list with one per block). A skipped block's ``norm`` and
``fn`` are never called and the residual stream passes it by, gradient included; a block that runs adds
``block.fn(block.norm(x))`` to the stream, unscaled. Eval mode runs every block. ``ran[i]`` says whether block
``i`` ran. With ``generator`` seeded like ``torch.manual_seed``, the skips are the library's
(``AttentionLayers.draw_skips`` draws ``torch.rand(len(blocks))`` from the global generator).

The checker runs hidden cases (seeded, plus the edges p = 0 and 1, eval mode, 1 and 12 blocks, a per-block
list, float64) and compares with a reference by the blocks that ran, by counted calls of every ``norm`` and
``fn``, by value, and by gradient with respect to the input and every parameter; it also watches the global
random generators, which the learner's code must leave alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from xtlab.course import (
    CallCounter,
    Case,
    Verdict,
    call,
    case_failed,
    compare_gradients,
    compare_values,
    describe,
    global_rng_watch,
    gradients,
    seeded_generator,
)
from xtlab.model import Block, Decoder

_DIM, _HEADS, _DIM_HEAD = 16, 2, 8


class _BlockForChecking(Block):
    """A copy of a library block whose own call explains itself: a ``Block`` has no ``forward`` of its own."""

    def forward(self, *args, **kwargs):
        raise TypeError("a Block has no forward of its own: compute the branch as block.fn(block.norm(x)) and add x")


@dataclass(frozen=True)
class _Setting:
    num_blocks: int
    p: float | tuple[float, ...]
    training: bool
    seed: int
    dtype: torch.dtype = torch.float32


def _blocks(num_blocks: int, seed: int, dtype: torch.dtype) -> nn.ModuleList:
    """``num_blocks`` library blocks (attention, feed-forward, ...) built from a fixed seed, global RNG untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        stack = Decoder(_DIM, (num_blocks + 1) // 2, _HEADS, attn_dim_head=_DIM_HEAD)
    blocks = nn.ModuleList(list(stack.layers)[:num_blocks]).to(dtype)
    for block in blocks:
        block.__class__ = _BlockForChecking
    return blocks


def _probabilities(p, num_blocks: int) -> list[float]:
    return [float(p)] * num_blocks if isinstance(p, (int, float)) else [float(q) for q in p]


def _stack(blocks, x, p, training, generator, *, rescale=False, one_draw=False, keep=False):
    """The reference, and the variants the diagnosis compares a wrong answer with."""
    probabilities = _probabilities(p, len(blocks))
    if one_draw:
        draws = torch.rand(1, generator=generator).expand(len(blocks)) if training else None
    else:
        draws = torch.rand(len(blocks), generator=generator) if training else None
    ran = []
    for i, block in enumerate(blocks):
        skip = training and bool((draws[i] >= probabilities[i]) if keep else (draws[i] < probabilities[i]))
        ran.append(not skip)
        if not skip:
            branch = block.fn(block.norm(x))
            x = x + (branch / (1 - probabilities[i]) if rescale else branch)
    return x, ran


def _cases() -> list[Case]:
    settings = [
        ("8 blocks, p=0.5, training", _Setting(8, 0.5, True, 21), False),
        ("6 blocks, p=0.3, training", _Setting(6, 0.3, True, 5), False),
        ("12 blocks, p=0.25, training", _Setting(12, 0.25, True, 13), True),
        ("6 blocks, per-block p=[0.0, 0.9, 0.5, 0.2, 0.7, 0.4], training",
         _Setting(6, (0.0, 0.9, 0.5, 0.2, 0.7, 0.4), True, 8), False),
        ("4 blocks, p=0.9, eval mode", _Setting(4, 0.9, False, 3), True),
        ("4 blocks, p=0, training", _Setting(4, 0.0, True, 4), True),
        ("4 blocks, p=1, training", _Setting(4, 1.0, True, 6), True),
        ("1 block, p=0.5, training", _Setting(1, 0.5, True, 1), True),
        ("4 blocks, p=0.5, training, float64", _Setting(4, 0.5, True, 17, torch.float64), True),
    ]
    return [Case(f"{text}, generator seeded {setting.seed}", (setting,), edge=edge) for text, setting, edge in settings]


def _inputs(setting: _Setting):
    blocks = _blocks(setting.num_blocks, 100 + setting.seed, setting.dtype)
    x = torch.randn(2, 5, _DIM, generator=seeded_generator(200 + setting.seed), dtype=setting.dtype)
    weights = torch.randn(2, 5, _DIM, generator=seeded_generator(300 + setting.seed), dtype=setting.dtype)
    return blocks, x, weights


def _reference_run(setting: _Setting, **variant):
    blocks, x, weights = _inputs(setting)
    x.requires_grad_(True)
    p = list(setting.p) if isinstance(setting.p, tuple) else setting.p
    out, ran = _stack(blocks, x, p, setting.training, seeded_generator(setting.seed), **variant)
    found = gradients(out, [x, *blocks.parameters()], weights)
    return out.detach(), ran, found


def _names(blocks) -> list[str]:
    return ["the input x", *(f"block {name.split('.')[0]}'s {'.'.join(name.split('.')[1:])}"
                             for name, _ in blocks.named_parameters())]


def _check_case(layer_dropout_stack: Callable, case: Case) -> Verdict | None:
    setting: _Setting = case.args[0]
    blocks, x, weights = _inputs(setting)
    x.requires_grad_(True)
    p = list(setting.p) if isinstance(setting.p, tuple) else setting.p
    parts = {f"{i}.{part}": getattr(block, part) for i, block in enumerate(blocks) for part in ("norm", "fn")}
    with global_rng_watch() as drawn, CallCounter(parts) as calls:
        result = call(layer_dropout_stack, blocks, x, p, setting.training, seeded_generator(setting.seed),
                      copy_args=False)
    hint_return = "return (out, ran): the stream after the last block and one bool per block, True if it ran"
    if drawn:
        where = " and ".join(drawn)
        if "Python's random module" in drawn:
            return case_failed(case, f"your code drew from {where}",
                               "draw the skips from the generator you were given, not Python's random: it is what "
                               "makes a seed reproduce them (x-transformers draws with random.random, lab section 7)")
        return case_failed(case, f"your code drew from {where}",
                           "pass generator=generator to torch.rand: torch's global generator is not the one given")
    if not (isinstance(result, (tuple, list)) and len(result) == 2):
        return case_failed(case, f"layer_dropout_stack returned {describe(result)}", hint_return)
    out, ran = result
    if isinstance(ran, torch.Tensor):
        ran = ran.tolist()
    if not isinstance(ran, (list, tuple)) or len(ran) != len(blocks) or not all(
            isinstance(r, bool) for r in ran):
        return case_failed(case, f"ran is {describe(ran)}, expected a list of {len(blocks)} bools", hint_return)
    ran = list(ran)
    expected_out, expected_ran, expected_grads = _reference_run(setting)
    skip_problem = _skip_problem(case, setting, ran, expected_ran)
    if skip_problem is not None:
        return skip_problem
    for i, block_ran in enumerate(expected_ran):
        count_norm, count_fn = calls.counts[f"{i}.norm"], calls.counts[f"{i}.fn"]
        if not block_ran and (count_norm or count_fn):
            return case_failed(case, f"block {i} was skipped, but its norm/fn were still called ({count_norm}/"
                                     f"{count_fn} times): the branch was computed and then discarded",
                               "decide the skip before touching the block: a skipped block saves its compute, "
                               "and its parameters take no part in the step")
        if block_ran and count_fn != 1:
            return case_failed(case, f"block {i} ran, but its fn was called {count_fn} times",
                               "call each running block once: x = x + block.fn(block.norm(x))")
    problem = compare_values(out, expected_out, name="the output", rtol=1e-5, atol=1e-6)
    if problem:
        return case_failed(case, problem + _value_diagnosis(setting, out), "a block that runs adds "
                           "block.fn(block.norm(x)) to the stream as it is; a skipped block leaves x as it is")
    got = gradients(out, [x, *blocks.parameters()], weights) if isinstance(out, torch.Tensor) else []
    problem = compare_gradients(got, expected_grads, _names(blocks), rtol=1e-4, atol=1e-6)
    if problem:
        return case_failed(case, problem, "a skipped block must let the residual stream through with its "
                                          "gradient intact: keep x itself (no x.detach(), no torch.no_grad())")
    return None


def _skip_problem(case: Case, setting: _Setting, ran: list[bool], expected: list[bool]) -> Verdict | None:
    if ran == expected:
        return None
    if not setting.training:
        return case_failed(case, f"blocks {[i for i, r in enumerate(ran) if not r]} were skipped in eval mode",
                           "layer dropout acts only in training: in eval mode (training=False) every block runs")
    inverted = _reference_run(setting, keep=True)[1]
    if ran == inverted and inverted != expected:
        return case_failed(case, "you skipped exactly the blocks whose draw was at or above p: you used p as a keep "
                                 "probability", "skip block i when its draw u[i] < p[i], so it is skipped with "
                                                "probability p")
    one_draw = _reference_run(setting, one_draw=True)[1]
    if ran == one_draw and len(set(expected)) > 1:
        return case_failed(case, f"you ran {ran}: one decision for every block, while the generator's draws, one per "
                                 f"block, say {expected}: you made one draw for the whole stack",
                           "draw one number per block (torch.rand(len(blocks), generator=generator)) and decide "
                           "each block on its own number")
    if isinstance(setting.p, tuple):
        first = _reference_run(_Setting(setting.num_blocks, setting.p[0], True, setting.seed, setting.dtype))[1]
        if ran == first:
            return case_failed(case, "your skips follow p[0] for every block: the per-block list was not used "
                                     "block by block", "with a list, block i is skipped with probability p[i]")
    return case_failed(case, f"ran is {ran}, but the draws of the generator you were given say {expected}",
                       "in training, draw u = torch.rand(len(blocks), generator=generator) once, before the loop, "
                       "and skip block i when u[i] < its probability")


def _value_diagnosis(setting: _Setting, out) -> str:
    if not isinstance(out, torch.Tensor):
        return ""
    rescaled = _reference_run(setting, rescale=True)[0]
    if compare_values(out, rescaled, rtol=1e-5, atol=1e-6) is None:
        return ("; it matches the stack with each running branch scaled by 1/(1-p), as neuron dropout does: "
                "layer dropout here and in x-transformers does not rescale, so your outputs would differ from the "
                "library's (and from x-transformers') by that factor at every running block")
    return ""


def check_layer_dropout_stack(layer_dropout_stack: Callable) -> Verdict:
    """Check ``layer_dropout_stack(blocks, x, p, training, generator) -> (out, ran)`` on the hidden cases."""
    cases = _cases()
    for case in cases:
        failed = _check_case(layer_dropout_stack, case)
        if failed is not None:
            return failed
    return Verdict.make_pass(
        f"layer_dropout_stack matches the reference on {len(cases)} hidden cases (1 to 12 blocks, p = 0 to 1, a "
        "per-block list, eval mode, float64): the same blocks ran, skipped blocks were never called, and the "
        "output and the gradients of the input and of every parameter agree.")


# --- the reference and the catalogue of wrong answers ---------------------------------------------------------

def reference_layer_dropout_stack(blocks, x, p, training, generator):
    probabilities = [p] * len(blocks) if isinstance(p, (int, float)) else list(p)
    draws = torch.rand(len(blocks), generator=generator) if training else None
    ran = []
    for i, block in enumerate(blocks):
        if training and draws[i] < probabilities[i]:
            ran.append(False)  # skipped: norm and fn never run; x passes by with its gradient
            continue
        x = x + block.fn(block.norm(x))
        ran.append(True)
    return x, ran


def _per_block(p: float | Sequence[float], n: int) -> list[float]:
    return [p] * n if isinstance(p, (int, float)) else list(p)


def detaches_on_skip(blocks, x, p, training, generator):
    probabilities, ran = _per_block(p, len(blocks)), []
    draws = torch.rand(len(blocks), generator=generator) if training else None
    for i, block in enumerate(blocks):
        if training and draws[i] < probabilities[i]:
            x = x.detach()  # "nothing flows through a skipped block"
            ran.append(False)
            continue
        x = x + block.fn(block.norm(x))
        ran.append(True)
    return x, ran


def runs_then_discards(blocks, x, p, training, generator):
    probabilities, ran = _per_block(p, len(blocks)), []
    draws = torch.rand(len(blocks), generator=generator) if training else None
    for i, block in enumerate(blocks):
        branch = block.fn(block.norm(x))
        keep = not (training and draws[i] < probabilities[i])
        x = x + branch if keep else x
        ran.append(keep)
    return x, ran


def draws_with_python_random(blocks, x, p, training, generator):
    import random

    probabilities, ran = _per_block(p, len(blocks)), []
    for i, block in enumerate(blocks):
        if training and random.random() < probabilities[i]:
            ran.append(False)
            continue
        x = x + block.fn(block.norm(x))
        ran.append(True)
    return x, ran


def draws_with_global_torch(blocks, x, p, training, generator):
    probabilities, ran = _per_block(p, len(blocks)), []
    draws = torch.rand(len(blocks)) if training else None
    for i, block in enumerate(blocks):
        if training and draws[i] < probabilities[i]:
            ran.append(False)
            continue
        x = x + block.fn(block.norm(x))
        ran.append(True)
    return x, ran


def one_draw_for_the_stack(blocks, x, p, training, generator):
    probabilities = _per_block(p, len(blocks))
    u = torch.rand(1, generator=generator) if training else None
    ran = []
    for i, block in enumerate(blocks):
        if training and u < probabilities[i]:
            ran.append(False)
            continue
        x = x + block.fn(block.norm(x))
        ran.append(True)
    return x, ran


def skips_in_eval_mode(blocks, x, p, training, generator):
    probabilities, ran = _per_block(p, len(blocks)), []
    draws = torch.rand(len(blocks), generator=generator)
    for i, block in enumerate(blocks):
        if draws[i] < probabilities[i]:
            ran.append(False)
            continue
        x = x + block.fn(block.norm(x))
        ran.append(True)
    return x, ran


def rescales_kept_blocks(blocks, x, p, training, generator):
    probabilities, ran = _per_block(p, len(blocks)), []
    draws = torch.rand(len(blocks), generator=generator) if training else None
    for i, block in enumerate(blocks):
        if training and draws[i] < probabilities[i]:
            ran.append(False)
            continue
        scale = 1 / (1 - probabilities[i]) if training else 1.0
        x = x + block.fn(block.norm(x)) * scale
        ran.append(True)
    return x, ran


def p_as_keep_probability(blocks, x, p, training, generator):
    probabilities, ran = _per_block(p, len(blocks)), []
    draws = torch.rand(len(blocks), generator=generator) if training else None
    for i, block in enumerate(blocks):
        if training and not draws[i] < probabilities[i]:
            ran.append(False)
            continue
        x = x + block.fn(block.norm(x))
        ran.append(True)
    return x, ran


def first_probability_for_all(blocks, x, p, training, generator):
    q = p if isinstance(p, (int, float)) else p[0]
    draws = torch.rand(len(blocks), generator=generator) if training else None
    ran = []
    for i, block in enumerate(blocks):
        if training and draws[i] < q:
            ran.append(False)
            continue
        x = x + block.fn(block.norm(x))
        ran.append(True)
    return x, ran


# --- the learner's stack next to the library's ---------------------------------------------------------------

@dataclass(frozen=True)
class StackAgainstLibrary:
    """The same blocks run by a stack function (seeded generator) and by the library (``torch.manual_seed``).

    Attributes:
        whose: ``"yours"`` or ``"the reference"`` (used while yours has not passed).
        passes: forward passes compared. same_skips: passes where both skipped the same blocks.
        largest_difference: the largest output difference over all passes (after the library's final norm).
    """

    whose: str
    passes: int
    same_skips: int
    largest_difference: float


def stack_against_library(layer_dropout_stack: Callable | None = None, layer_dropout: float = 0.3, depth: int = 4,
                          passes: int = 10, seed: int = 0) -> StackAgainstLibrary:
    """Run ``layer_dropout_stack`` (the reference when None) and the library's ``Decoder`` on the same blocks:
    pass k seeds the learner's generator and torch's global generator alike with ``seed + k``."""
    whose = "the reference" if layer_dropout_stack is None else "yours"
    stack_fn = layer_dropout_stack or reference_layer_dropout_stack
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(seed)
        library = Decoder(_DIM, depth, _HEADS, attn_dim_head=_DIM_HEAD, layer_dropout=layer_dropout).train()
        x = torch.randn(2, 5, _DIM)
        same, largest = 0, 0.0
        for k in range(passes):
            torch.manual_seed(seed + k)
            expected = library(x)
            skipped = set(library.last_skipped)
            out, ran = stack_fn(list(library.layers), x, layer_dropout, True, torch.Generator().manual_seed(seed + k))
            same += skipped == {i for i, r in enumerate(ran) if not r}
            largest = max(largest, float((library.final_norm(out) - expected).abs().max()))
    return StackAgainstLibrary(whose, passes, same, largest)
