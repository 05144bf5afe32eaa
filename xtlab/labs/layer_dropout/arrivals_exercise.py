"""Exercise: the gradient-arrival recorder, one training step at a time.

``gradient_arrivals(model, run_backward) -> {name: state}`` hooks every trainable parameter of ``model`` (a
parameter shared under two names once, under the name ``named_parameters()`` gives it; frozen ones left out),
calls ``run_backward()`` once (it may run several backward passes: gradient accumulation), removes its hooks, and
returns per parameter ``"none"`` (no gradient arrived), ``"zero"`` (gradients arrived, all exactly zero) or
``"nonzero"``. Hooks see what arrives; ``.grad`` after the step does not tell: ``zero_grad(set_to_none=False)``
leaves zeros there for a parameter nothing reached, and a step without ``zero_grad`` leaves the last step's.

The checker runs hidden steps on small models: a tied pair, a frozen layer, a parameter used twice in one forward
whose contributions cancel, a branch run and discarded, grads zeroed with ``set_to_none=False``, stale grads from
a previous step, and two backward passes in one step. It compares the states name by name, counts the calls of
``run_backward`` and checks that no hook is left on any parameter afterwards.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from xtlab.course import Case, Verdict, call, case_failed, describe, seeded_generator
from xtlab.data import get_batch, load_corpus
from xtlab.diagnostics import GradientPresence, GradientState
from xtlab.labs.layer_dropout.experiments import (
    BATCH_SIZE,
    BLOCK_PREFIX,
    SEQ_LEN,
    LayerDropoutRun,
    build_model,
    make_optimizer,
)
from xtlab.threads import one_cpu_thread
from xtlab.training import lm_loss

STATES = ("none", "zero", "nonzero")


class _TiedPair(nn.Module):
    """An embedding and an output layer sharing one weight, plus a layer the step may skip."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(7, 4)
        self.hidden = nn.Linear(4, 4)
        self.out = nn.Linear(4, 7, bias=False)
        self.out.weight = self.embed.weight  # tied: one Parameter, two names


class _FrozenBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.first = nn.Linear(4, 4)
        self.frozen = nn.Linear(4, 4)
        self.last = nn.Linear(4, 2)
        self.frozen.requires_grad_(False)


class _UsedTwice(nn.Module):
    """``weight`` enters the output twice with opposite signs: its gradient arrives and is exactly zero."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(4))
        self.scale = nn.Parameter(torch.ones(4))
        self.unused = nn.Linear(4, 4)


@dataclass(frozen=True)
class _Step:
    """A hidden step: how to build the model, what happens to .grad before, and the backward pass(es)."""

    make: Callable[[], nn.Module]
    before: str  # "none", "zeros" (zero_grad(set_to_none=False)) or "stale" (last step's grads left in place)
    backward: Callable[[nn.Module, torch.Tensor], None]


def _tied_step(model, x):
    tokens = (x.abs() * 10).long() % 7
    model.out(model.embed(tokens[:, 0])).sum().backward()  # hidden is skipped this step


def _frozen_step(model, x):
    model.last(model.frozen(model.first(x))).sum().backward()


def _twice_step(model, x):
    (x * model.weight - x * model.weight + x * model.scale).sum().backward()


def _discard_step(model, x):
    model.hidden(x)  # run, then discarded: it took part in no output
    model.out(model.embed((x.abs() * 10).long()[:, 0] % 7)).sum().backward()


def _accumulate_step(model, x):
    model.last(model.frozen(model.first(x))).sum().backward()
    (model.last(model.frozen(model.first(x))).sum() * 0).backward()  # a second micro-batch with zero gradients


def _cases() -> list[Case]:
    steps = [
        ("a tied pair (embed.weight is out.weight), hidden layer skipped, grads None before",
         _Step(_TiedPair, "none", _tied_step), False),
        ("a frozen layer (requires_grad=False), grads None before", _Step(_FrozenBlock, "none", _frozen_step), False),
        ("a layer run in the forward pass and its output discarded", _Step(_TiedPair, "none", _discard_step), True),
        ("a parameter used twice in one forward, contributions cancelling", _Step(_UsedTwice, "none", _twice_step),
         True),
        ("grads zeroed with zero_grad(set_to_none=False), hidden layer skipped",
         _Step(_TiedPair, "zeros", _tied_step), True),
        ("last step's grads left in place (no zero_grad), hidden layer skipped",
         _Step(_TiedPair, "stale", _tied_step), True),
        ("stale grads from the last step left in place, a parameter used twice with contributions cancelling",
         _Step(_UsedTwice, "stale", _twice_step), True),
        ("two backward passes in one step (gradient accumulation), the second all zeros",
         _Step(_FrozenBlock, "none", _accumulate_step), True),
    ]
    return [Case(text, (step,), edge=edge) for text, step, edge in steps]


def _prepare(step: _Step, seed: int):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = step.make()
    x = torch.randn(3, 4, generator=seeded_generator(seed + 1))
    for parameter in model.parameters():
        if not parameter.requires_grad:
            continue
        if step.before == "zeros":
            parameter.grad = torch.zeros_like(parameter)
        elif step.before == "stale":
            parameter.grad = torch.randn(parameter.shape, generator=seeded_generator(seed + 2))
        else:
            parameter.grad = None
    return model, x


def _expected(step: _Step, seed: int) -> dict[str, str]:
    model, x = _prepare(step, seed)
    return reference_gradient_arrivals(model, lambda: step.backward(model, x))


def _hooks_left(model: nn.Module) -> list[str]:
    left = []
    for name, parameter in model.named_parameters(remove_duplicate=False):
        if parameter._backward_hooks or getattr(parameter, "_post_accumulate_grad_hooks", None):
            left.append(name)
    return left


def _check_case(gradient_arrivals: Callable, case: Case, seed: int) -> Verdict | None:
    step: _Step = case.args[0]
    model, x = _prepare(step, seed)
    backward_calls = []

    def run_backward():
        backward_calls.append(1)
        step.backward(model, x)

    result = call(gradient_arrivals, model, run_backward, copy_args=False)
    expected = _expected(step, seed)
    hint_return = ("return a dict {parameter name: 'none' | 'zero' | 'nonzero'} with one entry per trainable "
                   "parameter, named as model.named_parameters() names it")
    if len(backward_calls) != 1:
        return case_failed(case, f"run_backward was called {len(backward_calls)} times",
                           "call run_backward() exactly once, between attaching and removing the hooks")
    left = _hooks_left(model)
    if left:
        return case_failed(case, f"hooks are still attached to {left} after gradient_arrivals returned",
                           "keep the handle register_hook returns and call handle.remove() once run_backward is "
                           "done (in a finally: block, so an error removes them too)")
    if not isinstance(result, dict):
        return case_failed(case, f"gradient_arrivals returned {describe(result)}", hint_return)
    names = [name for name in result]
    extra = [name for name in names if name not in expected]
    all_names = dict(model.named_parameters(remove_duplicate=False))
    frozen = [name for name in extra if name in all_names and not all_names[name].requires_grad]
    if frozen:
        return case_failed(case, f"frozen parameters {frozen} are recorded",
                           "leave out parameters with requires_grad=False: no gradient can ever arrive there, so "
                           "they are not part of the question")
    shared = [name for name in extra if name in all_names]
    if shared:
        return case_failed(case, f"{shared} are recorded besides the names they share a Parameter with: a shared "
                                 "parameter must be counted once",
                           "model.named_parameters() lists a shared Parameter once, under its first name; "
                           "remove_duplicate=False or walking every module's own parameters lists it twice")
    if extra or any(name not in result for name in expected):
        missing = [name for name in expected if name not in result]
        return case_failed(case, f"the names differ: unknown {extra}, missing {missing}", hint_return)
    bad = {name: state for name, state in result.items() if state not in STATES}
    if bad:
        return case_failed(case, f"states {bad} are not one of {STATES}", hint_return)
    wrong = {name: (result[name], expected[name]) for name in expected if result[name] != expected[name]}
    if not wrong:
        return None
    name, (got, want) = next(iter(wrong.items()))
    listing = ", ".join(f"{n}: {g!r} instead of {w!r}" for n, (g, w) in wrong.items())
    if step.before in ("zeros", "stale") and want == "none":
        return case_failed(case, f"{listing}: nothing arrived at {name}, but its .grad held "
                                 f"{'zeros' if step.before == 'zeros' else 'last step' + chr(39) + 's gradient'}",
                           "do not read .grad after the backward pass: it holds whatever was there before "
                           "(zero_grad(set_to_none=False) leaves zeros); record in a hook what arrives")
    if step.before == "stale" and want == "zero" and got == "nonzero":
        return case_failed(case, f"{listing}: a zero gradient arrived at {name}, but its .grad held last step's "
                                 "gradient, and .grad is that plus what arrived",
                           "judge what arrives (the grad a hook receives), not the accumulated .grad, not even "
                           "in a post-accumulate hook")
    if want == "zero" and got == "none":
        return case_failed(case, f"{listing}: a zero gradient arrived at {name}, which is not the same as none",
                           "a hook that fires has seen a gradient arrive: record 'zero' when it is all zeros, "
                           "'none' only when no hook fired")
    if want == "nonzero" and got == "zero":
        return case_failed(case, f"{listing}: a nonzero gradient arrived at {name} in the first backward pass, "
                                 "then a zero one: the later arrival overwrote the nonzero one",
                           "within one step a nonzero arrival wins: once 'nonzero', keep it")
    if want == "none" and got != "none":
        return case_failed(case, f"{listing}: {name}'s module ran in the forward pass, but no gradient arrived",
                           "what ran in the forward pass is not what got a gradient: hook the parameters' "
                           "gradients (parameter.register_hook), not the modules' forward")
    return case_failed(case, listing, "record in a hook on each parameter what arrives during run_backward()")


def check_gradient_arrivals(gradient_arrivals: Callable) -> Verdict:
    """Check ``gradient_arrivals(model, run_backward) -> {name: state}`` on the hidden steps."""
    cases = _cases()
    for index, case in enumerate(cases):
        failed = _check_case(gradient_arrivals, case, seed=10 + index)
        if failed is not None:
            return failed
    return Verdict.make_pass(
        f"gradient_arrivals is right on {len(cases)} hidden steps: a tied pair counted once, a frozen layer left "
        "out, a cancelled gradient kept as 'zero', a discarded branch and zeroed or stale .grad as 'none', two "
        "backward passes in one step, and no hook left behind.")


# --- the reference and the catalogue ---------------------------------------------------------------------------

def reference_gradient_arrivals(model, run_backward):
    arrived, handles = {}, []
    for name, parameter in model.named_parameters():  # a shared parameter is listed once
        if not parameter.requires_grad:
            continue
        arrived[name] = "none"

        def hook(grad, name=name):
            if arrived[name] != "nonzero":
                arrived[name] = "nonzero" if bool(grad.ne(0).any()) else "zero"

        handles.append(parameter.register_hook(hook))
    try:
        run_backward()
    finally:
        for handle in handles:
            handle.remove()
    return arrived


def reads_grad_after_backward(model, run_backward):
    run_backward()
    return {name: "none" if p.grad is None else "nonzero" if bool(p.grad.ne(0).any()) else "zero"
            for name, p in model.named_parameters() if p.requires_grad}


def _hooked(model, run_backward, *, zero_as_none=False, last_wins=False, remove=True, duplicates=False,
            frozen=False):
    arrived, handles = {}, []
    for name, parameter in model.named_parameters(remove_duplicate=not duplicates):
        if not parameter.requires_grad:
            if frozen:
                arrived[name] = "none"
            continue
        arrived[name] = "none"

        def hook(grad, name=name):
            nonzero = bool(grad.ne(0).any())
            if zero_as_none and not nonzero:
                return
            if last_wins or arrived[name] != "nonzero":
                arrived[name] = "nonzero" if nonzero else "zero"

        handles.append(parameter.register_hook(hook))
    run_backward()
    if remove:
        for handle in handles:
            handle.remove()
    return arrived


def zero_counts_as_none(model, run_backward):
    return _hooked(model, run_backward, zero_as_none=True)


def last_arrival_wins(model, run_backward):
    return _hooked(model, run_backward, last_wins=True)


def keeps_its_hooks(model, run_backward):
    return _hooked(model, run_backward, remove=False)


def counts_shared_twice(model, run_backward):
    return _hooked(model, run_backward, duplicates=True)


def records_frozen(model, run_backward):
    return _hooked(model, run_backward, frozen=True)


def forward_hooks(model, run_backward):
    ran, handles = set(), []
    for module_name, module in model.named_modules():
        handles.append(module.register_forward_hook(lambda m, i, o, module_name=module_name: ran.add(module_name)))
    run_backward()
    for handle in handles:
        handle.remove()
    states = {}
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            owner = name.rpartition(".")[0]
            states[name] = "nonzero" if owner in ran or owner == "" else "none"
    return states


# --- the lab's training run, recorded by a gradient_arrivals function -------------------------------------------

_STATE_OF = {"none": GradientState.NO_GRADIENT, "zero": GradientState.ZERO_GRADIENT,
             "nonzero": GradientState.NONZERO_GRADIENT}


@dataclass(frozen=True)
class RecordedRun:
    """The lab's training run recorded by a ``gradient_arrivals`` function.

    Attributes:
        whose: ``"your recorder"`` or ``"the library's recorder"``.
        run: the run, its ``presence`` built from the recorder's states (norms: 1 where nonzero, 0 where zero).
    """

    whose: str
    run: LayerDropoutRun

    def same_states_as(self, other: LayerDropoutRun) -> bool:
        """Whether every (step, parameter) state equals ``other``'s (the library recorder's)."""
        return (self.run.presence.labels == other.presence.labels
                and self.run.presence.states == other.presence.states)


def recorded_run(gradient_arrivals: Callable | None = None, layer_dropout: float = 0.1, depth: int = 4,
                 steps: int = 60, seed: int = 0) -> RecordedRun:
    """Train as :func:`run_layer_dropout` does (same model, batches and skips for the same settings) and record each
    step with ``gradient_arrivals`` (the reference when None). The caller's random state is left as it was."""
    whose = "the library's recorder" if gradient_arrivals is None else "your recorder"
    arrivals = gradient_arrivals or reference_gradient_arrivals
    corpus = load_corpus()
    states, losses, reported = [], [], []
    python_state, numpy_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]), one_cpu_thread():
        model = build_model(corpus.tokenizer.vocab_size, depth, layer_dropout, seed=seed)
        optimizer = make_optimizer(model)
        batches = torch.Generator().manual_seed(seed)
        names = tuple(name for name, _ in model.named_parameters())
        for _ in range(steps):
            optimizer.zero_grad(set_to_none=True)
            batch = get_batch(corpus.train, BATCH_SIZE, SEQ_LEN, batches, torch.device("cpu"))
            loss_box = []

            def run_backward(batch=batch, loss_box=loss_box):
                loss = lm_loss(model, batch)
                loss.backward()
                loss_box.append(float(loss.detach()))

            found = arrivals(model, run_backward)
            reported.append(tuple(model.skipped_blocks))
            states.append(tuple(_STATE_OF[found.get(name, "none")] for name in names))
            losses.append(loss_box[0] if loss_box else math.nan)
            optimizer.step()
    random.setstate(python_state)  # build_model seeds Python's and NumPy's generators too
    np.random.set_state(numpy_state)
    layers = model.attn_layers.layers
    presence = GradientPresence(
        labels=names, steps=tuple(range(steps)), states=tuple(states),
        norms=tuple(tuple(math.nan if s == GradientState.NO_GRADIENT else float(s == GradientState.NONZERO_GRADIENT)
                          for s in row) for row in states),
        losses=tuple(losses), members=tuple((name,) for name in names))
    run = LayerDropoutRun(layer_dropout, depth, steps, seed, "train", 0.0, presence, tuple(reported),
                          tuple(f"{BLOCK_PREFIX}{i}" for i in range(len(layers))),
                          tuple(block.kind for block in layers))
    return RecordedRun(whose, run)
