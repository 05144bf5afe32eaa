"""Lab 04, choosing AdamW's implementation: the for-loop, ``foreach`` or ``fused`` for a set of parameter groups,
refusing what torch refuses, and the checker of the learner's ``choose_implementation``.

The rules are torch 2.13's own checks (the course promises torch >=2.13,<2.14), each cited below by file and
function; ``tests/labs/test_optimizer_groups_implementation.py`` runs every one against torch on the CPU and on the
``meta`` device, so they are measured, not copied. Devices torch cannot create here (cuda, mps, ...) are decided
by the device lists, which the same test compares with torch's helpers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from xtlab.course import Case, LearnerCodeFailed, Verdict, call, case_failed, describe
from xtlab.labs.optimizer_groups.timing import IMPLEMENTATIONS

# torch/utils/_foreach_utils.py, _get_fused_kernels_supported_devices() (2.13), without the custom backend's name
FUSED_DEVICES = ("mps", "cuda", "xpu", "hpu", "cpu", "mtia")
# torch/utils/_foreach_utils.py, _get_foreach_kernels_supported_devices() (2.13): the devices with foreach kernels;
# torch/optim/optimizer.py, _default_to_fused_or_foreach() picks foreach only when every stepped tensor is on one
FOREACH_DEVICES = ("cuda", "xpu", "mtia")
# what one would pass to torch.optim.AdamW for each implementation: the flags the lab's timing uses
CHOICES = IMPLEMENTATIONS


@dataclass(frozen=True)
class Refusal:
    """One combination torch 2.13's AdamW refuses, where, and the source line that refuses it.

    Attributes:
        name: the combination in a few words.
        kwargs: the AdamW arguments that ask for it.
        tensor: the parameter that takes part ((dtype, device), with a gradient unless ``grad`` is False).
        when: "construction" (``AdamW(...)`` raises) or "first step" (``step()`` raises).
        error: the exception type torch raises.
        source: the file and function of torch that raises it.
    """

    name: str
    kwargs: Mapping[str, Any]
    tensor: tuple[torch.dtype, str] = (torch.float32, "cpu")
    when: str = "construction"
    error: type[BaseException] = RuntimeError
    source: str = ""
    grad: bool = True


REFUSALS = (
    Refusal("fused and foreach together", {"fused": True, "foreach": True},
            source="torch/optim/adam.py, Adam.__init__: `fused` and `foreach` cannot be `True` together"),
    Refusal("fused with differentiable", {"fused": True, "differentiable": True},
            source="torch/optim/adam.py, Adam.__init__: `fused` does not support `differentiable`"),
    Refusal("fused on complex parameters", {"fused": True}, (torch.complex64, "cpu"), "first step",
            source="torch/optim/optimizer.py, _device_dtype_check_for_fused (called by Adam._init_group)"),
    Refusal("fused on a parameter of an integer dtype that holds a gradient", {"fused": True}, (torch.int64, "cpu"),
            "first step", source="torch/optim/optimizer.py, _device_dtype_check_for_fused"),
    Refusal("fused on a device outside the fused list (meta)", {"fused": True}, (torch.float32, "meta"),
            "first step", source="torch/optim/optimizer.py, _device_dtype_check_for_fused"),
    Refusal("foreach with differentiable", {"foreach": True, "differentiable": True}, when="first step",
            error=AssertionError, source="torch/optim/adam.py, _multi_tensor_adam: _foreach ops don't support "
                                         "autograd"),
    Refusal("capturable on the CPU without fused", {"foreach": False, "capturable": True}, when="first step",
            error=AssertionError, source="torch/optim/adam.py, _single_tensor_adam: capturable needs "
                                         "_get_capturable_supported_devices()"),
)
# what torch accepts although one might expect a refusal (each also run against torch by the test)
ACCEPTED = (
    Refusal("fused with an integer buffer (no gradient) in a group", {"fused": True}, (torch.int64, "cpu"),
            "first step", grad=False, source="torch/optim/adam.py, Adam._init_group: only `p.grad is not None` "
                                              "tensors are checked"),
    Refusal("foreach on the CPU", {"foreach": True}, source="torch/optim/adam.py, _multi_tensor_adam"),
    Refusal("foreach on complex parameters", {"foreach": True}, (torch.complex64, "cpu"),
            source="torch/optim/adam.py, _multi_tensor_adam: complex viewed as real"),
    Refusal("fused on bfloat16 on the CPU", {"fused": True}, (torch.bfloat16, "cpu"),
            source="torch/optim/optimizer.py, _device_dtype_check_for_fused: any floating dtype"),
)


def tensor_kinds(groups: Sequence[Any]) -> list[list[tuple[str, torch.dtype]]]:
    """torch.optim groups (dicts with "params", or one list of tensors) as ``choose_implementation`` takes them:
    one list per group of ``(device type, dtype)``, one pair per tensor."""
    if groups and all(isinstance(g, torch.Tensor) for g in groups):
        groups = [{"params": list(groups)}]
    return [[(p.device.type, p.dtype) for p in g["params"]] for g in groups]


def reference_choose_implementation(groups, fused=None, foreach=None):
    if fused and foreach:
        raise ValueError("fused=True and foreach=True together: torch's AdamW refuses both at once")
    # only tensors that can hold a gradient are stepped, so only they are checked (an integer buffer never is)
    stepped = [(device, dtype) for group in groups for device, dtype in group
               if dtype.is_floating_point or dtype.is_complex]
    blockers = [f"{dtype} on {device}" for device, dtype in stepped
                if device not in FUSED_DEVICES or not dtype.is_floating_point]
    if fused:
        if blockers:
            raise ValueError(f"fused=True with a tensor of {blockers[0]}: torch's fused AdamW needs floating-point "
                             f"tensors on {FUSED_DEVICES}")
        return {"fused": True}
    if foreach:
        return {"foreach": True, "fused": False}
    if fused is None and not blockers:
        return {"fused": True}  # fewest operations per step (section 3's count)
    if foreach is None and all(device in FOREACH_DEVICES for device, _ in stepped):
        return {"foreach": True, "fused": False}
    return {"foreach": False, "fused": False}


# --- the checker -------------------------------------------------------------------------------------------------

F32, F64, BF16, F16 = torch.float32, torch.float64, torch.bfloat16, torch.float16
C64, I64 = torch.complex64, torch.int64


def _case(setting: str, groups: list, edge: bool = False, **flags: bool) -> Case:
    return Case(setting, args=(groups,), kwargs=flags, edge=edge)


IMPLEMENTATION_CASES = (
    _case("two CPU groups of float32, nothing asked", [[("cpu", F32)] * 3, [("cpu", F32)] * 2]),
    _case("CPU float64, nothing asked", [[("cpu", F64)] * 2, [("cpu", F64)]]),
    _case("CPU bfloat16, nothing asked", [[("cpu", BF16)] * 2]),
    _case("CPU float32, foreach=True", [[("cpu", F32)] * 2], foreach=True),
    _case("CPU float32, fused=False", [[("cpu", F32)] * 2], fused=False),
    _case("CUDA float32, fused=False", [[("cuda", F32)] * 2], fused=False),
    _case("CUDA float32, foreach=False", [[("cuda", F32)] * 2], foreach=False),
    _case("CUDA float16, nothing asked", [[("cuda", F16)] * 2, [("cuda", F16)]]),
    _case("Apple-GPU float32, nothing asked", [[("mps", F32)] * 2]),
    _case("CPU complex64, nothing asked", [[("cpu", C64)] * 2]),
    _case("CUDA complex64 then float32, nothing asked", [[("cuda", C64)], [("cuda", F32)]]),
    _case("CPU complex64, fused=True", [[("cpu", C64)], [("cpu", F32)]], edge=True, fused=True),
    _case("CPU float32 with an int64 buffer in the group, fused=True", [[("cpu", F32), ("cpu", I64)]], edge=True,
          fused=True),
    _case("meta float32, fused=True", [[("meta", F32)] * 2], edge=True, fused=True),
    _case("meta float32, nothing asked", [[("meta", F32)] * 2], edge=True),
    _case("meta float32, foreach=True", [[("meta", F32)] * 2], edge=True, foreach=True),
    _case("CPU and CUDA float32 (mixed devices), nothing asked", [[("cpu", F32)], [("cuda", F32)]]),
    _case("CPU then meta float32 (mixed devices), nothing asked", [[("cpu", F32)], [("meta", F32)]], edge=True),
    _case("CPU then meta float32 (mixed devices), fused=True", [[("cpu", F32), ("meta", F32)]], edge=True,
          fused=True),
    _case("CUDA float32, fused=True and foreach=True", [[("cuda", F32)] * 2], edge=True, fused=True, foreach=True),
    _case("an empty group, then CUDA bfloat16, nothing asked", [[], [("cuda", BF16)] * 2], edge=True),
    _case("CUDA float32, fused=False and foreach=False", [[("cuda", F32)]], fused=False, foreach=False),
)
# devices torch can create here: on them the checker also builds the optimizer and takes a step
RUNNABLE = ("cpu", "meta")
REFUSED = "refused"


def implementation_of(kwargs: Any) -> str | None:
    """Which implementation ``torch.optim.AdamW(params, **kwargs)`` runs, by torch's resolution of the flags
    (torch/optim/adam.py, ``adam()``): "fused", "foreach", "for-loop", "both" (refused) or "default" (nothing
    explicit: torch would decide); None when ``kwargs`` is not a dict of ``fused``/``foreach`` booleans."""
    if not isinstance(kwargs, dict) or not kwargs or not set(kwargs) <= {"fused", "foreach"}:
        return "default" if isinstance(kwargs, dict) and not kwargs else None
    if not all(type(value) is bool for value in kwargs.values()):
        return None
    fused, foreach = kwargs.get("fused", False), kwargs.get("foreach", False)
    return "both" if fused and foreach else "fused" if fused else "foreach" if foreach else "for-loop"


def _outcome(function, case: Case) -> tuple[str, str]:
    """("refused", message) when ``function`` raises ValueError on the case, else ("returned", implementation)."""
    def attempt(groups, **flags):
        try:
            return ("returned", function(groups, **flags))
        except ValueError as err:
            return (REFUSED, str(err))
        except NotImplementedError:
            raise  # the stub: NOT YET
        except RuntimeError as err:
            return ("RuntimeError", str(err))

    kind, value = call(attempt, *case.args, **case.kwargs)
    if kind == "RuntimeError":
        raise LearnerCodeFailed(f"hidden case ({case.setting}): your function raised RuntimeError: {describe(value)}",
                                "a combination of arguments torch cannot run is a bad argument: raise ValueError "
                                "naming it (torch itself raises RuntimeError, late)")
    if kind == REFUSED:
        return kind, value if isinstance(value, str) else ""
    name = implementation_of(value)
    return ("returned", name if name is not None else f"<{describe(value)}>")


def _torch_runs(case: Case, kwargs: dict) -> str:
    """Empty when torch builds AdamW with ``kwargs`` over the case's tensors and takes one step; else its error."""
    groups = []
    for group in case.args[0]:
        tensors = []
        for device, dtype in group:
            if dtype.is_floating_point or dtype.is_complex:
                tensor = nn.Parameter(torch.ones(3, dtype=dtype, device=device))
                tensor.grad = torch.ones_like(tensor)
            else:
                tensor = torch.zeros(3, dtype=dtype, device=device)  # a buffer: it cannot require grad
            tensors.append(tensor)
        groups.append({"params": tensors})
    try:
        torch.optim.AdamW(groups, lr=1e-3, **kwargs).step()
    except (RuntimeError, ValueError, AssertionError, TypeError) as err:
        return f"{type(err).__name__}: {str(err)[:160]}"
    return ""


def _names_the_combination(case: Case, message: str) -> bool:
    if case.kwargs.get("fused") and case.kwargs.get("foreach"):
        return "fused" in message and "foreach" in message
    stepped = [(d, t) for group in case.args[0] for d, t in group if t.is_floating_point or t.is_complex]
    culprits = [(d, t) for d, t in stepped if d not in FUSED_DEVICES or not t.is_floating_point]
    words = {d for d, t in culprits if d not in FUSED_DEVICES} | {str(t).removeprefix("torch.") for d, t in culprits
                                                                   if not t.is_floating_point}
    return any(word in message for word in words)


def _signature(function) -> list[tuple[str, str]] | None:
    try:
        return [(kind, name if kind == "returned" else "") for kind, name in
                (_outcome(function, case) for case in IMPLEMENTATION_CASES)]
    except LearnerCodeFailed:
        return None


GENERIC_HINT = ("an explicit True is honoured or refused (fused needs floating-point tensors on a device of "
                "lab.FUSED_DEVICES; never fused and foreach together); with nothing asked, fused when it is allowed, "
                "then foreach when every tensor is on a device of lab.FOREACH_DEVICES, else the for-loop; a False "
                "only rules its implementation out; only tensors that can hold a gradient count")


def check_choose_implementation(choose_implementation) -> Verdict:
    """``choose_implementation(groups, fused=None, foreach=None)`` returns the AdamW flags the reference returns on
    every hidden case (or refuses with ValueError naming the combination where the reference does), and torch
    accepts the flags it returns on the cases it can run here."""
    for case in IMPLEMENTATION_CASES:
        expected = _outcome(reference_choose_implementation, case)
        got = _outcome(choose_implementation, case)
        problem = ""
        if got[0] != expected[0]:
            problem = (f"you refused ({got[1]!r}), but torch accepts {expected[1]} here" if got[0] == REFUSED else
                       f"you returned the flags for {got[1]}, but torch refuses this combination")
        elif got[0] == REFUSED and not _names_the_combination(case, got[1]):
            return case_failed(case, f"you refused, with the message {got[1]!r}",
                               "name the combination in the message: the dtype or device that rules fused out, or "
                               "'fused and foreach' when both were asked")
        elif got[0] != REFUSED and got[1] != expected[1]:
            problem = f"you chose {got[1]}, expected {expected[1]}"
        if not problem and got[0] != REFUSED and all(d in RUNNABLE for g in case.args[0] for d, _ in g):
            refused_by_torch = _torch_runs(case, CHOICES[got[1]])
            if refused_by_torch:
                problem = f"torch refused your choice {got[1]}: {refused_by_torch}"
        if problem:
            return case_failed(case, problem, _diagnose(choose_implementation))
    return Verdict.make_pass(f"your choice matches the reference on {len(IMPLEMENTATION_CASES)} hidden cases "
                             f"(CPU, CUDA, Apple GPU and meta; float32, float64, bfloat16, float16, complex, an "
                             f"integer buffer, mixed devices, an empty group, explicit and impossible requests), "
                             f"and torch took one step with each choice it could run here")


def _diagnose(choose_implementation) -> str:
    theirs = _signature(choose_implementation)
    if theirs is not None:
        for mistake in MISTAKES:
            if _signature(mistake[1]) == theirs:
                return mistake[2]
    return GENERIC_HINT


# --- the catalogue: realistic wrong answers ------------------------------------------------------------------------


def _always_fused(groups, fused=None, foreach=None):
    return {"fused": True}


def _stepped(groups):
    return [(d, t) for group in groups for d, t in group if t.is_floating_point or t.is_complex]


def _variant(fused_ok, fallback_foreach, refuse=True, both=False):
    def choose(groups, fused=None, foreach=None):
        if fused and foreach:
            if both:
                return {"fused": True, "foreach": True}
            raise ValueError("fused=True and foreach=True together")
        allowed = fused_ok(groups)
        if fused and (allowed or not refuse):
            return {"fused": True} if allowed else {"foreach": False, "fused": False}
        if fused:
            raise ValueError(f"fused=True is not supported for {groups}")
        if foreach:
            return {"foreach": True, "fused": False}
        if fused is None and allowed:
            return {"fused": True}
        if foreach is None and fallback_foreach(groups):
            return {"foreach": True, "fused": False}
        return {"foreach": False, "fused": False}
    return choose


def _fused_ok(groups):
    return all(d in FUSED_DEVICES and t.is_floating_point for d, t in _stepped(groups))


def _foreach_ok(groups):
    return all(d in FOREACH_DEVICES for d, _ in _stepped(groups))


def _first_only(groups):
    device, dtype = next(pair for group in groups for pair in group)
    return device, dtype


def _torch_default(groups, fused=None, foreach=None):
    if fused and foreach:
        raise ValueError("fused=True and foreach=True together")
    if fused:
        return reference_choose_implementation(groups, fused=True)
    if foreach or (foreach is None and _foreach_ok(groups)):
        return {"foreach": True, "fused": False}
    return {"foreach": False, "fused": False}


def _foreach_only_on_its_devices(groups, fused=None, foreach=None):
    if foreach and not _foreach_ok(groups):
        raise ValueError(f"foreach=True needs every tensor on {FOREACH_DEVICES}, but got {groups}")
    return reference_choose_implementation(groups, fused, foreach)


def _any_false_means_for_loop(groups, fused=None, foreach=None):
    if (fused is False or foreach is False) and not foreach:
        return {"foreach": False, "fused": False}
    return reference_choose_implementation(groups, fused, foreach)


def _vague(groups, fused=None, foreach=None):
    try:
        return reference_choose_implementation(groups, fused, foreach)
    except ValueError:
        raise ValueError("this combination is not supported") from None


MISTAKES = (
    ("always fused", _always_fused,
     "you return fused whatever was asked and whatever the tensors: honour foreach=True and fused=False"),
    ("fused on any device", _variant(lambda g: all(t.is_floating_point for _, t in _stepped(g)), _foreach_ok),
     "fused also needs every stepped tensor on a device of torch's fused list (lab.FUSED_DEVICES): meta is not"),
    ("ignores dtype", _variant(lambda g: all(d in FUSED_DEVICES for d, _ in _stepped(g)), _foreach_ok),
     "fused needs floating-point tensors: torch refuses complex ones (torch.is_floating_point is False for them)"),
    ("returns both fused and foreach", _variant(_fused_ok, _foreach_ok, both=True),
     "torch refuses fused=True and foreach=True together: raise ValueError, do not return both"),
    ("silently falls back", _variant(_fused_ok, _foreach_ok, refuse=False),
     "an explicit request torch cannot honour must be refused, not replaced by another implementation"),
    ("foreach on the CPU as fastest", _variant(_fused_ok, lambda g: True),
     "foreach only where torch has foreach kernels (lab.FOREACH_DEVICES, torch's own default rule): on the CPU "
     "it is the for-loop"),
    ("torch's default copied", _torch_default,
     "torch's default never picks fused (its comment: 'bake-in time'), but fused dispatches the fewest operations"),
    ("integer buffer blocks fused", _variant(lambda g: all(d in FUSED_DEVICES and t.is_floating_point
                                                           for group in g for d, t in group), _foreach_ok),
     "an integer tensor never receives a gradient (autograd refuses requires_grad on it): AdamW never steps it, "
     "so it does not rule fused out"),
    ("decides by the first tensor", _variant(lambda g: _fused_ok([[_first_only(g)]]),
                                             lambda g: _foreach_ok([[_first_only(g)]])),
     "every tensor of every group decides, not the first one: mixed devices happen"),
    ("refuses an explicit foreach off its kernel devices", _foreach_only_on_its_devices,
     "foreach=True runs on any device (without foreach kernels, torch loops per tensor): only the default "
     "avoids it there"),
    ("any False means the for-loop", _any_false_means_for_loop,
     "a False rules out only its own implementation: with fused=False, foreach is still the fastest where torch "
     "has foreach kernels"),
    ("refuses with a vague message", _vague, "name the combination in the message"),
)
