"""The invariants of the course, one function each: ``check(model, adapter, seed, steps) -> Row``.

Each is measured on the model as it is (its own layer-dropout probability, memories, tie, and its own
``configure_optimizers`` when it has one); a check whose adapter hook is missing "could not run" (reason: missing
capability). Differences are reported against :data:`TOLERANCE`: below it as a verdict ("within tolerance"),
above it with two significant digits, so the text is the same on a CPU and a GPU. The functions change nothing
they do not put back (the caller, :func:`xtlab.audit`, also snapshots the model and the random state).
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import io
from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace

import torch
from torch import nn

from xtlab.diagnostics.gradient_presence import GradientPresence, GradientState, record_gradient_presence
from xtlab.diagnostics.model_audit.adapter import ModelAdapter
from xtlab.diagnostics.model_audit.model_state import seed_all
from xtlab.diagnostics.model_audit.rows import ADAPTER_ERROR, COULD_NOT_RUN, FAILS, HOLDS, Row, missing, status_of
from xtlab.diagnostics.model_audit.tying_paths import PATHS, run_tying_paths
from xtlab.diagnostics.optimizer_groups import (
    EXEMPT_CATEGORIES,
    check_param_groups,
    classify_parameter,
    param_groups,
    strategy_disagreements,
)
from xtlab.diagnostics.ties import TieStatus, embedding_output_tie
from xtlab.diagnostics.unused_parameters import find_unused_parameters

PROBE_LAYER_DROPOUT = 0.5  # the seeding probe skips often, so two runs that differ show it within a few steps
TOLERANCE = 1e-4  # largest |difference| of float32 outputs counted as equal
SHOWN_NAMES = 3


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:SHOWN_NAMES])
    return shown + (f" and {len(names) - SHOWN_NAMES} more" if len(names) > SHOWN_NAMES else "")


@contextmanager
def layer_dropout_set(model: nn.Module, adapter: ModelAdapter, p: float) -> Iterator[None]:
    """The model's layer dropout set to ``p`` inside the block (nothing when the adapter has no hook)."""
    if not adapter.has_layer_dropout:
        yield
        return
    previous = adapter.get_layer_dropout(model)
    adapter.set_layer_dropout(model, p)
    try:
        yield
    finally:
        adapter.set_layer_dropout(model, previous)


def training_presence(model: nn.Module, adapter: ModelAdapter, steps: int, torch_seed: int,
                      python_seed: int, batch_seed: int = 0) -> GradientPresence:
    """Gradient presence over ``steps`` backward passes in train mode, one batch, after seeding torch with
    ``torch_seed`` and Python/NumPy with ``python_seed`` (no optimizer step: the weights do not change)."""
    model.train()
    batch = adapter.batch(model, batch_seed)
    seed_all(torch_seed, python_seed)

    def step(_: int) -> float:
        loss = adapter.scalar_loss(model, batch)
        loss.backward()
        return float(loss.detach())

    return record_gradient_presence(model, step, steps)


def _steps_with_missing(presence: GradientPresence) -> list[int]:
    return [step for step, row in zip(presence.steps, presence.states, strict=True)
            if GradientState.NO_GRADIENT in row]


def gradient_presence(model: nn.Module, adapter: ModelAdapter, seed: int, steps: int) -> Row:
    """Every trainable parameter gets a gradient at every training step (with the model's own layer dropout)."""
    p = adapter.get_layer_dropout(model) if adapter.has_layer_dropout else 0.0
    presence = training_presence(model, adapter, steps, seed, seed)
    missing_steps = _steps_with_missing(presence)
    names = [label for column, label in enumerate(presence.labels)
             if any(row[column] == GradientState.NO_GRADIENT for row in presence.states)]
    dropout = f"layer dropout p={p:g}" if adapter.has_layer_dropout else "no layer dropout hook"
    evidence = (f"{dropout}, {steps} training steps: {len(missing_steps)} of {steps} steps left parameters "
                f"without a gradient; {len(names)} of {len(presence.labels)} parameters missed at least one step")
    if names:
        evidence += f" ({_names(names)}): DDP needs find_unused_parameters=True"
    return Row("gradient_presence", "every parameter gets a gradient at every training step",
               status_of(not missing_steps), evidence)


def layer_dropout_seeding(model: nn.Module, adapter: ModelAdapter, seed: int, steps: int) -> Row:
    """Layer dropout draws its skips from torch's generator: the same torch seed gives the same skips even when
    Python's and NumPy's seeds differ."""
    check = "layer-dropout skips are reproducible from torch.manual_seed alone"
    if not adapter.has_layer_dropout:
        return missing("layer_dropout_seeding", check, "the adapter has no layer-dropout hook")
    with layer_dropout_set(model, adapter, PROBE_LAYER_DROPOUT):
        first = training_presence(model, adapter, steps, seed, seed)
        again = training_presence(model, adapter, steps, seed, seed)
        other = training_presence(model, adapter, steps, seed, seed + 1)
    skipped = len(_steps_with_missing(first))
    probe = f"probe at p={PROBE_LAYER_DROPOUT:g}, {steps} steps, torch seed {seed}"
    if skipped == 0:
        return Row("layer_dropout_seeding", check, COULD_NOT_RUN,
                   f"{probe}: no step skipped anything, so there is nothing to compare (does set_layer_dropout "
                   f"reach the model?)", ADAPTER_ERROR)
    if first.states != again.states:
        return Row("layer_dropout_seeding", check, FAILS,
                   f"{probe}: the skips differ even with every seed repeated (they come from outside torch, "
                   f"Python and NumPy)")
    differ = sum(a != b for a, b in zip(first.states, other.states, strict=True))
    return Row("layer_dropout_seeding", check, status_of(differ == 0),
               f"{probe}: with Python seed {seed} vs {seed + 1}, {differ} of {steps} steps differ in which "
               f"parameters got a gradient ({skipped} steps skipped something)")


def _segments(model: nn.Module, adapter: ModelAdapter, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    tokens = adapter.batch(model, seed)[0]
    half = tokens.shape[1] // 2
    return tokens, tokens[:, :half], tokens[:, half:]


def _largest_difference(first: torch.Tensor, second: torch.Tensor) -> float:
    return float((first.float() - second.float()).abs().max())


def shown_difference(difference: float) -> str:
    """A largest |difference| as text both a CPU and a GPU print alike: float noise below :data:`TOLERANCE` as
    ``"< 1e-04"`` (the verdict, not the noise), a real difference with two significant digits."""
    return f"< {TOLERANCE:.0e}" if difference <= TOLERANCE else f"{difference:.2g}"


def mems_none_vs_zero(model: nn.Module, adapter: ModelAdapter, seed: int, steps: int) -> Row:
    """Passing all-zero memories gives the same output as passing ``mems=None`` (empty memories are masked)."""
    check = "mems=None and all-zero memories give the same output"
    if not adapter.has_memories:
        return missing("mems_none_vs_zero", check, "the adapter has no XL-memory hook")
    model.eval()
    with torch.no_grad():
        _, first, second = _segments(model, adapter, seed)
        _, mems = adapter.xl_step(model, first, None)
        zeros = [torch.zeros_like(mem) for mem in mems]
        without, _ = adapter.xl_step(model, second, None)
        with_zeros, _ = adapter.xl_step(model, second, zeros)
    difference = _largest_difference(without, with_zeros)
    return Row("mems_none_vs_zero", check, status_of(difference <= TOLERANCE),
               f"{len(zeros)} zero memories of {zeros[0].shape[1]} positions: largest |output difference| "
               f"{shown_difference(difference)} (tolerance {TOLERANCE:.0e})")


def segmented_vs_full(model: nn.Module, adapter: ModelAdapter, seed: int, steps: int) -> Row:
    """Two segments with XL memories give the outputs of one pass over the whole sequence (eval mode)."""
    check = "a segmented XL pass equals one full pass"
    if not adapter.has_memories:
        return missing("segmented_vs_full", check, "the adapter has no XL-memory hook")
    model.eval()
    with torch.no_grad():
        tokens, first, second = _segments(model, adapter, seed)
        full, _ = adapter.xl_step(model, tokens, None)
        out_first, mems = adapter.xl_step(model, first, None)
        out_second, _ = adapter.xl_step(model, second, mems)
    kept = min(mem.shape[1] for mem in mems)
    if kept < first.shape[1]:
        return missing("segmented_vs_full", check,
                       f"memories keep {kept} positions, fewer than the first segment's {first.shape[1]}: a full "
                       f"pass sees more, so the two cannot agree")
    half = first.shape[1]
    first_difference = _largest_difference(out_first, full[:, :half])
    difference = _largest_difference(out_second, full[:, half:])
    return Row("segmented_vs_full", check, status_of(max(difference, first_difference) <= TOLERANCE),
               f"{tokens.shape[1]} tokens as 2 segments of {half}, memories of {kept}: largest |segmented - "
               f"full| {shown_difference(difference)} on the second segment, {shown_difference(first_difference)} on "
               f"the first (tolerance {TOLERANCE:.0e})")


def tying_paths(model: nn.Module, adapter: ModelAdapter, seed: int, steps: int) -> Row:
    """The embedding/output tie survives the six save/load paths and ``copy.deepcopy``."""
    check = f"the embedding/output tie survives {len(PATHS) - 1} save/load paths and deepcopy"
    if not adapter.has_tie:
        return missing("tying_paths", check, "the adapter names no embedding/output pair")
    as_built = embedding_output_tie(model, adapter.embedding, adapter.output)
    if as_built != TieStatus.TIED:
        return missing("tying_paths", check, f"{adapter.embedding} and {adapter.output} are {as_built.value} as "
                                             f"built: there is no tie to keep")
    outcomes = run_tying_paths(model, adapter.embedding, adapter.output)
    kept = sum(outcome.holds for outcome in outcomes)
    return Row("tying_paths", check, status_of(kept == len(outcomes)),
               f"tied in {kept} of {len(outcomes)}: " + "; ".join(str(outcome) for outcome in outcomes))


OWN_OPTIMIZER_ARGUMENTS = {"weight_decay": 0.1, "learning_rate": 1e-3, "lr": 1e-3, "betas": (0.9, 0.95),
                           "device_type": "cpu"}


def own_optimizer(model: nn.Module) -> tuple[torch.optim.Optimizer | None, str]:
    """The optimizer the model's own ``configure_optimizers`` builds (nanoGPT's and minGPT's designs), and what
    was graded, in words; ``(None, why)`` when the model has none or it cannot be called.

    Its arguments are filled by name: ``weight_decay``, ``learning_rate``/``lr``, ``betas``, ``device_type``, or
    ``train_config`` (an object with those attributes, as minGPT takes); what it prints is swallowed.
    """
    configure = getattr(model, "configure_optimizers", None)
    if not callable(configure):
        return None, "the usual recipe by parameter type (the model has no configure_optimizers)"
    arguments, unknown = {}, []
    for name, parameter in inspect.signature(configure).parameters.items():
        if name in OWN_OPTIMIZER_ARGUMENTS:
            arguments[name] = OWN_OPTIMIZER_ARGUMENTS[name]
        elif name == "train_config":
            arguments[name] = SimpleNamespace(**OWN_OPTIMIZER_ARGUMENTS)
        elif parameter.default is inspect.Parameter.empty and parameter.kind not in (
                inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            unknown.append(name)
    if unknown:
        return None, (f"the usual recipe by parameter type (the model's configure_optimizers takes {unknown}, "
                      f"which the audit cannot fill)")
    with contextlib.redirect_stdout(io.StringIO()):
        optimizer = configure(**arguments)
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"the model's configure_optimizers returned {type(optimizer).__name__}, not an optimizer")
    return optimizer, f"the model's own configure_optimizers ({type(optimizer).__name__}, weight_decay=0.1)"


def optimizer_groups(model: nn.Module, adapter: ModelAdapter, seed: int, steps: int) -> Row:
    """Optimizer groups hold every trainable parameter exactly once (the model's own configure_optimizers when
    it has one, else the usual recipe by parameter type)."""
    check = "optimizer groups are complete and disjoint (ties counted once)"
    optimizer, graded = own_optimizer(model)
    groups = param_groups(model, 0.1) if optimizer is None else optimizer.param_groups
    try:
        found = check_param_groups(model, groups)
    except ValueError as err:
        return Row("optimizer_groups", check, FAILS, f"graded {graded}: {err}")
    counts = "; ".join(f"group {index}: {count} tensors ({values:,} values)"
                       for index, (count, values) in enumerate(zip(found.counts, found.numels, strict=True)))
    return Row("optimizer_groups", check, HOLDS, f"graded {graded}: {counts}; frozen: {len(found.frozen)}")


def decay_placement(model: nn.Module, adapter: ModelAdapter, seed: int, steps: int) -> Row:
    """Weight decay spares embeddings, norm gains, biases, memory tokens and memory key/values (the model's own
    configure_optimizers when it has one, else the usual ndim >= 2 recipe)."""
    check = "weight decay spares every parameter that should not decay"
    optimizer, graded = own_optimizer(model)
    if optimizer is None:
        graded = "the usual ndim >= 2 recipe (the model has no configure_optimizers)" if "no configure" in graded \
            else graded.replace("by parameter type", "ndim >= 2")
        disagreements = strategy_disagreements(model)
        wrongly_decayed = [f"{by_type.name} ({by_type.category})" for by_type, by_ndim in disagreements
                           if by_ndim.group == "decay"]
    else:
        modules = dict(model.named_modules())
        decayed = {id(p) for group in optimizer.param_groups if group.get("weight_decay", 0.0) > 0
                   for p in group["params"]}
        wrongly_decayed = []
        for name, parameter in model.named_parameters():
            category, _ = classify_parameter(name, parameter, modules[name.rpartition(".")[0]])
            if id(parameter) in decayed and category in EXEMPT_CATEGORIES:
                wrongly_decayed.append(f"{name} ({category})")
    evidence = f"graded {graded}: decayed that should not be: {len(wrongly_decayed)} parameters"
    if wrongly_decayed:
        evidence += f": {_names(wrongly_decayed)}"
    return Row("decay_placement", check, status_of(not wrongly_decayed), evidence)


def deepcopy_independence(model: nn.Module, adapter: ModelAdapter, seed: int, steps: int) -> Row:
    """``copy.deepcopy`` gives an independent model: the copy's loss reaches only the copy's parameters."""
    check = "copy.deepcopy gives an independent model (the copy's loss reaches none of the original's parameters)"
    batch = adapter.batch(model, seed)
    duplicate = copy.deepcopy(model)
    for parameter in model.parameters():
        parameter.grad = None
    duplicate.eval()
    with layer_dropout_set(duplicate, adapter, 0.0):
        adapter.scalar_loss(duplicate, batch).backward()
    reached = [name for name, parameter in model.named_parameters() if parameter.grad is not None]
    total = sum(1 for _ in model.parameters())
    evidence = f"{len(reached)} of {total} parameters of the original got a gradient from the copy's loss"
    if reached:
        evidence += (f" ({_names(reached)}): the copy still calls the original's modules or tensors (a function or "
                     f"lambda attribute that closes over them is not copied)")
    return Row("deepcopy_independence", check, status_of(not reached), evidence)


def unused_parameters(model: nn.Module, adapter: ModelAdapter, seed: int, steps: int) -> Row:
    """With layer dropout off, one training step reaches every trainable parameter."""
    check = "no unused parameters (one training step, layer dropout off)"
    model.train()
    batch = adapter.batch(model, seed)
    with layer_dropout_set(model, adapter, 0.0):
        unused = find_unused_parameters(model, adapter.scalar_loss, batch)
    total = sum(p.requires_grad for p in model.parameters())
    values = sum(p.numel for p in unused)
    evidence = f"{len(unused)} of {total} trainable parameters got no gradient"
    if unused:
        evidence += f" ({_names([p.name for p in unused])}; {values:,} values): DDP without " \
                    f"find_unused_parameters=True will fail"
    return Row("unused_parameters", check, status_of(not unused), evidence)


LOCAL_CHECKS = (gradient_presence, layer_dropout_seeding, mems_none_vs_zero, segmented_vs_full, tying_paths,
                deepcopy_independence, optimizer_groups, decay_placement, unused_parameters)
