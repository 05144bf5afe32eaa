"""Exercise: audit a model the notebook never showed. ``audit_unknown(model, adapter) -> dict`` reports the ties,
the unused parameters and the parameters that get no weight decay, with the course's instruments, and leaves the
model as found. The checker runs it on four hidden models (``hidden_models``) and compares with their stated
findings, then checks every tensor, ``requires_grad``, ``.grad``, training flag and the layer dropout were left
as found and no global random generator was drawn from."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import nn

from xtlab.course import (
    Case,
    Exercise,
    LearnerCodeFailed,
    Mistake,
    Verdict,
    call,
    case_failed,
    expect_type,
    global_rng_watch,
)
from xtlab.diagnostics.model_audit import ModelAdapter, ModelSnapshot, layer_dropout_set
from xtlab.diagnostics.model_audit.model_state import global_random_state_kept
from xtlab.diagnostics.optimizer_groups import describe_parameters
from xtlab.diagnostics.ties import inspect_ties
from xtlab.diagnostics.unused_parameters import find_unused_parameters
from xtlab.labs.audit.hidden_models import HIDDEN_MODELS, HiddenModel, hidden_adapter
from xtlab.threads import one_cpu_thread

KEYS = ("tied", "unused", "no_decay")


def audit_unknown_reference(model: nn.Module, adapter: ModelAdapter) -> dict[str, list]:
    """Ties (every name of one Parameter), unused parameters (one training step, layer dropout off) and the
    no-decay group of the lab's rule; the model and the global random state are left as found."""
    snapshot = ModelSnapshot(model)  # flags, buffers, grads, layer dropout: all put back
    try:
        with global_random_state_kept():  # a training pass draws dropout masks from the global generators
            model.train()
            with layer_dropout_set(model, adapter, 0.0):
                batch = adapter.make_batch(model, torch.Generator().manual_seed(0))
                unused = find_unused_parameters(model, adapter.loss, batch)
    finally:
        snapshot.restore()
    return {"tied": [list(group) for group in inspect_ties(model).tied],
            "unused": [parameter.name for parameter in unused],
            "no_decay": [row.name for row in describe_parameters(model) if row.group == "no_decay"]}


# --- the model as found ----------------------------------------------------------------------------------------

class AsFound:
    """What the learner's code must leave as it found it: every module's training flag, every parameter (object,
    values, ``requires_grad``, ``.grad``), every buffer, and the layer dropout the adapter reads."""

    def __init__(self, model: nn.Module, adapter: ModelAdapter):
        self.flags = {name: module.training for name, module in model.named_modules(remove_duplicate=False)}
        self.parameters = {name: (p, p.detach().clone(), p.requires_grad, None if p.grad is None else p.grad.clone())
                           for name, p in model.named_parameters(remove_duplicate=False)}
        self.buffers = {name: (b, b.clone()) for name, b in model.named_buffers()}
        self.layer_dropout = adapter.get_layer_dropout(model) if adapter.has_layer_dropout else None

    def problem(self, model: nn.Module, adapter: ModelAdapter) -> tuple[str, str] | None:
        """``(what changed, hint)`` for the first change, or None."""
        flags = {name: module.training for name, module in model.named_modules(remove_duplicate=False)}
        if flags[""] != self.flags[""]:
            return (f"you left the model in {_mode(flags[''])} mode; it came in {_mode(self.flags[''])} mode",
                    "an audit leaves the model as found: put back the training flag it had (ModelSnapshot does)")
        if flags.keys() != self.flags.keys():
            return ("your audit added or removed submodules", "an audit measures: it changes no module")
        moved = [name for name, flag in flags.items() if flag != self.flags[name]]
        if moved:
            return (f"the training flag of {moved[0]} changed (it came in {_mode(self.flags[moved[0]])} mode inside "
                    f"a model in {_mode(self.flags[''])} mode)",
                    "model.train(flag) sets every submodule: save and put back each module's own flag "
                    "(ModelSnapshot does)")
        if self.layer_dropout is not None and adapter.get_layer_dropout(model) != self.layer_dropout:
            return (f"the layer dropout is {adapter.get_layer_dropout(model)}; it came in at {self.layer_dropout}",
                    "switch layer dropout off for the step only: put the layer dropout back (layer_dropout_set)")
        now = dict(model.named_parameters(remove_duplicate=False))
        for name, (parameter, values, requires_grad, grad) in self.parameters.items():
            current = now.get(name)
            if current is not parameter or not torch.equal(parameter.detach(), values):
                return f"parameter {name} was replaced or changed", "an audit measures: it changes no weight"
            if parameter.requires_grad != requires_grad:
                return (f"requires_grad of {name} changed", "leave requires_grad as found: frozen stays frozen")
            if (parameter.grad is None) != (grad is None) or (grad is not None and
                                                                not torch.equal(parameter.grad, grad)):
                return (f"the .grad of {name} changed (it came in as {'None' if grad is None else 'a tensor'})",
                        "put back every .grad as found, None or not (find_unused_parameters does)")
        for name, (buffer, values) in self.buffers.items():
            if not torch.equal(buffer, values):
                return (f"buffer {name} changed",
                        "a training pass updates buffers (BatchNorm's running statistics): put back every tensor, "
                        "not only the flags (ModelSnapshot does)")
        return None


def _mode(training: bool) -> str:
    return "training" if training else "eval"


# --- reading the answer ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Reading:
    """The answer's findings as Parameter objects: ``tied`` a list of groups of names, the others lists of names."""

    tied: list[tuple[str, ...]]
    unused: list[str]
    no_decay: list[str]


def _names(value, what: str) -> list[str]:
    items = list(expect_type(value, (list, tuple, set, frozenset), what))
    for item in items:
        expect_type(item, str, f"each name in {what}")
    return items


def _read(result, model: nn.Module) -> Reading | tuple[str, str]:
    result = expect_type(result, (dict, Mapping), "audit_unknown(model, adapter)")
    missing = [key for key in KEYS if key not in result]
    if missing:
        return (f"your findings have no key {missing}", f"return a dict with the keys {list(KEYS)}")
    groups = [tuple(_names(group, "each group in findings['tied']"))
              for group in expect_type(result["tied"], (list, tuple, set, frozenset), "findings['tied']")]
    reading = Reading(groups, _names(result["unused"], "findings['unused']"),
                      _names(result["no_decay"], "findings['no_decay']"))
    parameters = dict(model.named_parameters(remove_duplicate=False))
    buffers = dict(model.named_buffers())
    for name in [name for group in reading.tied for name in group] + reading.unused + reading.no_decay:
        if name in buffers:
            return (f"your findings name {name!r}, a buffer of this model",
                    "buffers must not count: they are no parameters (read names from named_parameters, not from "
                    "state_dict)")
        if name not in parameters:
            return (f"your findings name {name!r}, which is not a parameter of this model",
                    "the hidden models name their parameters their own way: read the names from the model "
                    "(named_parameters), never the notebook model's names")
    return reading


# --- the verdict on one hidden model ---------------------------------------------------------------------------

def _reference_gradients(hidden: HiddenModel) -> dict[str, torch.Tensor | None]:
    """Each trainable parameter's gradient after the reference's training step (layer dropout off)."""
    model = hidden.build(hidden.seed)
    adapter = hidden_adapter(model)
    for parameter in model.parameters():
        parameter.grad = None
    with global_random_state_kept():
        model.train()
        with layer_dropout_set(model, adapter, 0.0):
            adapter.loss(model, adapter.make_batch(model, torch.Generator().manual_seed(0))).backward()
    return {name: p.grad for name, p in model.named_parameters() if p.requires_grad}


def _tied_problem(reading: Reading, hidden: HiddenModel, model: nn.Module) -> tuple[str, str] | None:
    parameters = dict(model.named_parameters(remove_duplicate=False))
    names = [name for group in reading.tied for name in group]
    if any(len(set(group)) < 2 for group in reading.tied):
        return (f"a tied group of yours names fewer than two parameters: {reading.tied}",
                "a tie is one Parameter under two or more names: list every name in its group")
    if len(names) != len(set(names)):
        return (f"your tied groups {reading.tied} name a parameter more than once",
                "report each tie once: one group per Parameter, every name it goes by in that group")
    yours, truth = {frozenset(group) for group in reading.tied}, {frozenset(group) for group in hidden.tied}
    for group in yours - truth:
        objects = {id(parameters[name]) for name in group}
        if len(objects) > 1:
            first, *others = (parameters[name] for name in group)
            equal = all(p.shape == first.shape and torch.equal(p.detach(), first.detach()) for p in others)
            why = "hold equal values" if equal else "hold different values"
            return (f"you report {sorted(group)} as tied, but they are {len(objects)} different Parameters that {why}",
                    "equal values are not a tie: a tie is one Parameter object under several names (compare with "
                    "`is`, as inspect_ties does)")
    if truth - yours:
        if not yours:
            return (f"you found no tie, but {len(truth)} Parameter(s) of this model go by two names",
                    "named_parameters() drops the second name of a tied Parameter: pass remove_duplicate=False "
                    "(inspect_ties does)")
        return (f"you missed {len(truth - yours)} tie(s) (a group must list every name of the Parameter)",
                "group every name model.named_parameters(remove_duplicate=False) gives one Parameter object")
    return None


def _as_objects(names: list[str], model: nn.Module, what: str) -> dict[int, str] | tuple[str, str]:
    parameters = dict(model.named_parameters(remove_duplicate=False))
    objects: dict[int, str] = {}
    for name in names:
        if id(parameters[name]) in objects:
            return (f"findings['{what}'] lists one parameter twice ({objects[id(parameters[name])]!r} and {name!r})",
                    "list each parameter once (a tied Parameter under one of its names)")
        objects[id(parameters[name])] = name
    return objects


def _unused_problem(reading: Reading, hidden: HiddenModel, model: nn.Module) -> tuple[str, str] | None:
    yours = _as_objects(reading.unused, model, "unused")
    if isinstance(yours, tuple):
        return yours
    parameters = dict(model.named_parameters(remove_duplicate=False))
    truth = {id(parameters[name]) for name in hidden.unused}
    extra = [yours[key] for key in yours.keys() - truth]
    if extra:
        frozen = [name for name in extra if not parameters[name].requires_grad]
        if frozen:
            return (f"you report the frozen {frozen[0]} as unused",
                    "frozen parameters (requires_grad=False) are not unused: DDP ignores them too; look only at "
                    "trainable ones")
        train_only = [name for name in extra if name in hidden.train_only]
        if train_only:
            return (f"you report {train_only[0]} as unused, but the training pass uses it",
                    "the step is a training step: run it in training mode (some parameters are used only there), "
                    "then put the flags back")
        grads = _reference_gradients(hidden)
        reached = [name for name in extra if grads.get(name) is not None and bool(grads[name].abs().sum() > 0)]
        if reached and hidden_adapter(model).has_layer_dropout:
            return (f"you report {reached[0]} as unused, but a step without layer dropout reaches it",
                    "switch layer dropout off through the adapter for the step (layer_dropout_set(model, adapter, "
                    "0.0)): a skipped block is not an unused one")
        zero = [name for name in extra if grads.get(name) is not None]
        if zero:
            return (f"you report {zero[0]} as unused; its gradient is exactly zero here, but it has one",
                    "a gradient of exactly zero is still a gradient: unused means .grad is None after the step")
        return f"you report {extra[0]} as unused, but the training step reaches it", "unused means .grad is None"
    if truth - yours.keys():
        return (f"you missed {len(truth - yours.keys())} unused parameter(s)",
                "one training step (adapter.loss on adapter.make_batch, backward) leaves them with .grad None: use "
                "find_unused_parameters")
    return None


def _no_decay_problem(reading: Reading, hidden: HiddenModel, model: nn.Module) -> tuple[str, str] | None:
    yours = _as_objects(reading.no_decay, model, "no_decay")
    if isinstance(yours, tuple):
        return yours
    parameters = dict(model.named_parameters(remove_duplicate=False))
    truth = {id(parameters[name]): name for name in hidden.no_decay}
    extra = [yours[key] for key in yours.keys() - truth.keys()]
    missed = [truth[key] for key in truth.keys() - yours.keys()]
    if not extra and not missed:
        return None
    categories = {row.name: row.category for row in describe_parameters(model)}
    if any(not parameters[name].requires_grad for name in extra):
        return (f"your no-decay group holds a frozen parameter ({extra[0]})",
                "frozen parameters go in no optimizer group")
    gains = [name for name in missed if categories.get(name) == "norm gain"]
    if gains:
        return (f"you missed the norm gain {gains[0]}",
                "a norm's gain may be called gamma, g or scale: classify a parameter by the module that holds it "
                "(classify_parameter, describe_parameters), not by its name")
    if any(categories.get(name) == "embedding" for name in missed) or any(parameters[n].ndim <= 1 for n in extra):
        return (f"your no-decay group differs from the lab's rule: missed {missed[:2]}, extra {extra[:2]}",
                "the lab's rule goes by type, not by ndim: embeddings get no decay, a 0-d gate does "
                "(describe_parameters, strategy 'by_type')")
    return (f"your no-decay group differs from the lab's rule: missed {len(missed)}, extra {extra[:2]}",
            "use the lab's rule: describe_parameters(model) and its 'no_decay' group")


def _learner_crash(err: LearnerCodeFailed, model: nn.Module, adapter: ModelAdapter) -> Verdict:
    if "AttributeError" in err.checked and type(model).__name__ in err.checked:
        return Verdict.make_try_again(err.checked, "the hidden models are not TinyLM: reach the model only through "
                                                   "named_parameters/named_modules and the adapter's hooks")
    if "NoneType" in err.checked and not adapter.has_layer_dropout:
        return Verdict.make_try_again(err.checked, "this model's adapter has no layer-dropout hooks "
                                                   "(adapter.has_layer_dropout is False): skip them, as "
                                                   "layer_dropout_set does")
    return Verdict.make_try_again(err.checked, err.hint)


def _one_model(answer, hidden: HiddenModel) -> Verdict | None:
    case = Case(hidden.setting)
    model = hidden.build(hidden.seed)
    adapter = hidden_adapter(model)
    found = AsFound(model, adapter)
    torch.manual_seed(hidden.seed)
    with global_rng_watch() as drawn:
        try:
            result = call(answer, model, adapter, copy_args=False)
        except LearnerCodeFailed as err:
            return _learner_crash(err, model, adapter)
    reading = _read(result, model)
    for problem in (reading if isinstance(reading, tuple) else None, found.problem(model, adapter)):
        if problem is not None:
            return case_failed(case, *problem)
    if drawn:
        return case_failed(case, f"your audit drew from {drawn[0]}",
                           "keep the global random state (global_random_state_kept, torch.random.fork_rng): a "
                           "training pass draws dropout masks and noise from the global generators")
    for check in (_tied_problem, _unused_problem, _no_decay_problem):
        problem = check(reading, hidden, model)
        if problem is not None:
            return case_failed(case, *problem)
    return None


def check_audit_unknown(answer) -> Verdict:
    """The four hidden models, each against its stated findings and left as found."""
    with one_cpu_thread():  # tiny models: one thread is many times faster on a small, busy CPU
        for hidden in HIDDEN_MODELS:
            verdict = _one_model(answer, hidden)
            if verdict is not None:
                return verdict
    return Verdict.make_pass(f"your audit finds the ties, unused parameters and no-decay group of {len(HIDDEN_MODELS)} "
                             f"hidden models (ties by assignment, through a module, by a function, and equal but "
                             f"untied), and leaves each as found")


# --- for the notebook ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Findings:
    """What an audit found on one model, and whose function found it."""

    whose: str
    tied: list
    unused: list
    no_decay: list


def findings_on(audit_unknown: Callable | None, model: nn.Module, adapter: ModelAdapter) -> Findings:
    """``audit_unknown(model, adapter)`` (the reference when None), as :class:`Findings`."""
    function = audit_unknown_reference if audit_unknown is None else audit_unknown
    found = function(model, adapter)
    return Findings("the reference" if audit_unknown is None else "yours",
                    *(sorted(list(item) if key == "tied" else item for item in found[key]) for key in KEYS))


# --- the catalogue: the reference with one part wrong ----------------------------------------------------------

def _variant(*, ties=None, unused=None, no_decay=None, step=None, keep=None, keep_rng=True) -> Callable:
    """The reference with some parts replaced: ``ties(model)``, ``unused(model, adapter)``, ``no_decay(model)``,
    ``step(model, adapter) -> names`` (the training step), ``keep(model, adapter) -> restore()``."""

    def audit_unknown(model, adapter):
        restore = (keep or _snapshot)(model, adapter)
        try:
            with global_random_state_kept() if keep_rng else _nothing():
                found_unused = (step or _step)(model, adapter) if unused is None else unused(model, adapter)
        finally:
            restore()
        return {"tied": (ties or _ties)(model), "unused": found_unused,
                "no_decay": (no_decay or _no_decay)(model)}

    return audit_unknown


class _nothing:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def _snapshot(model, adapter):
    return ModelSnapshot(model).restore


def _step(model, adapter, mode: str = "train", layer_dropout_off: bool = True):
    model.train(mode == "train")
    batch = adapter.make_batch(model, torch.Generator().manual_seed(0))
    if layer_dropout_off:
        with layer_dropout_set(model, adapter, 0.0):
            return [p.name for p in find_unused_parameters(model, adapter.loss, batch)]
    return [p.name for p in find_unused_parameters(model, adapter.loss, batch)]


def _ties(model):
    return [list(group) for group in inspect_ties(model).tied]


def _no_decay(model):
    return [row.name for row in describe_parameters(model) if row.group == "no_decay"]


def _notebook_names(model, adapter):
    return {"tied": [("embed.weight", "head.weight")], "unused": ["value_head.weight", "value_head.bias"],
            "no_decay": ["embed.weight", "norm.weight", "norm.bias"]}


def _ties_by_value(model):
    named = list(model.named_parameters())
    groups = []
    for i, (name, p) in enumerate(named):
        same = [other for other, q in named[i + 1:] if q.shape == p.shape and torch.equal(q, p)]
        if same and not any(name in group for group in groups):
            groups.append([name, *same])
    return groups


def _ties_without_duplicates(model):
    by_object: dict[int, list[str]] = {}
    for name, parameter in model.named_parameters():
        by_object.setdefault(id(parameter), []).append(name)
    return [names for names in by_object.values() if len(names) > 1]


def _ties_twice(model):
    every = list(model.named_parameters(remove_duplicate=False))
    return [(name, other) for name, p in every for other, q in every if p is q and name != other]


def _zero_gradient_unused(model, adapter):
    model.train()
    for parameter in model.parameters():
        parameter.grad = None
    with layer_dropout_set(model, adapter, 0.0):
        adapter.loss(model, adapter.make_batch(model, torch.Generator().manual_seed(0))).backward()
    return [name for name, p in model.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.any())]


def _frozen_unused(model, adapter):
    model.train()
    for parameter in model.parameters():
        parameter.grad = None
    with layer_dropout_set(model, adapter, 0.0):
        adapter.loss(model, adapter.make_batch(model, torch.Generator().manual_seed(0))).backward()
    return [name for name, p in model.named_parameters() if p.grad is None]


def _manual_backward(model, adapter):  # zero_grad() clears the grads the model came with
    model.train()
    with layer_dropout_set(model, adapter, 0.0):
        adapter.loss(model, adapter.make_batch(model, torch.Generator().manual_seed(0))).backward()
    unused = [name for name, p in model.named_parameters() if p.requires_grad and p.grad is None]
    model.zero_grad()
    return unused


def _unused_from_state_dict(model, adapter):
    model.train()
    state = model.state_dict(keep_vars=True)
    saved = {key: tensor.grad for key, tensor in state.items()}
    with layer_dropout_set(model, adapter, 0.0):
        adapter.loss(model, adapter.make_batch(model, torch.Generator().manual_seed(0))).backward()
    unused = [key for key, tensor in state.items() if tensor.grad is None]
    for key, tensor in state.items():
        tensor.grad = saved[key]
    return unused


def _sets_layer_dropout_always(model, adapter):
    model.train()
    previous = adapter.get_layer_dropout(model)
    adapter.set_layer_dropout(model, 0.0)
    try:
        return [p.name for p in find_unused_parameters(model, adapter.loss, adapter.batch(model, 0))]
    finally:
        adapter.set_layer_dropout(model, previous)


def _keep_nothing(model, adapter):
    return lambda: None


def _keep_top_flag(model, adapter):
    was = model.training
    return lambda: model.train(was)


def _keep_every_flag(model, adapter):
    flags = [(module, module.training) for module in model.modules()]

    def restore():
        for module, flag in flags:
            module.training = flag
    return restore


def _no_decay_by_ndim(model):
    return [name for name, p in model.named_parameters() if p.requires_grad and p.ndim < 2]


def _no_decay_by_name(model):
    words = ("bias", "norm", "ln", "emb")
    return [name for name, p in model.named_parameters() if p.requires_grad and any(w in name for w in words)]


AUDIT_UNKNOWN_EXERCISE = Exercise(
    name="audit_unknown",
    prompt="audit_unknown(model, adapter) -> {'tied': [[names of one Parameter], ...], 'unused': [names], "
           "'no_decay': [names]}: ties (every name of one Parameter object), the trainable parameters one training "
           "step (training mode, layer dropout off) leaves with .grad None, and the lab's no-decay group; the "
           "model and the global random state left as found",
    checker=check_audit_unknown,
    reference=audit_unknown_reference,
    time_limit_s=5.0,
    mistakes=(
        Mistake("the notebook model's names, hard-coded", _notebook_names, "never the notebook model's names"),
        Mistake("ties detected by equal values", _variant(ties=_ties_by_value), "equal values are not a tie"),
        Mistake("ties from named_parameters(), which drops the duplicate names",
                _variant(ties=_ties_without_duplicates), "remove_duplicate=False"),
        Mistake("each tie reported twice, once from each name", _variant(ties=_ties_twice), "report each tie once"),
        Mistake("unused = no gradient or a zero gradient", _variant(unused=_zero_gradient_unused),
                "exactly zero is still a gradient"),
        Mistake("frozen parameters counted as unused", _variant(unused=_frozen_unused), "frozen parameters"),
        Mistake("unused read from state_dict, buffers included", _variant(unused=_unused_from_state_dict),
                "buffers must not count"),
        Mistake("the step run in eval mode", _variant(step=lambda m, a: _step(m, a, mode="eval")),
                "run it in training mode"),
        Mistake("layer dropout left on during the step",
                _variant(step=lambda m, a: _step(m, a, layer_dropout_off=False)),
                "a skipped block is not an unused one"),
        Mistake("layer-dropout hooks called on an adapter without them", _variant(step=_sets_layer_dropout_always),
                "has_layer_dropout"),
        Mistake("the model left in training mode", _variant(keep=_keep_nothing), "put back the training flag"),
        Mistake("only the top module's flag put back", _variant(keep=_keep_top_flag), "each module's own flag"),
        Mistake("flags put back, BatchNorm's running statistics not", _variant(keep=_keep_every_flag),
                "running statistics"),
        Mistake("the global random state not kept", _variant(keep_rng=False), "keep the global random state"),
        Mistake("a manual backward pass, then zero_grad()", _variant(unused=_manual_backward, keep=_keep_every_flag),
                "put back every .grad"),
        Mistake("no decay by ndim < 2", _variant(no_decay=_no_decay_by_ndim), "goes by type, not by ndim"),
        Mistake("no decay by words in the name", _variant(no_decay=_no_decay_by_name), "by the module that holds it"),
    ),
)
