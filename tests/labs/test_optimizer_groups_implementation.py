"""Lab 04's choice of AdamW implementation: every rule the exercise enforces is run against torch itself (on the
CPU and the meta device), the device lists are torch's own, and the "fastest" rule agrees with the lab's
operation counts and with torch's default rule where torch's default is not fused."""

import pytest
import torch
from torch import nn
from torch.optim.optimizer import _default_to_fused_or_foreach
from torch.utils._foreach_utils import _get_foreach_kernels_supported_devices, _get_fused_kernels_supported_devices

from xtlab.labs.optimizer_groups.implementation_exercise import (
    ACCEPTED,
    CHOICES,
    FOREACH_DEVICES,
    FUSED_DEVICES,
    IMPLEMENTATION_CASES,
    REFUSALS,
    RUNNABLE,
    _torch_runs,
    implementation_of,
    reference_choose_implementation,
    tensor_kinds,
)
from xtlab.labs.optimizer_groups.models import xtlab_decoder
from xtlab.labs.optimizer_groups.timing import IMPLEMENTATIONS, count_step_operations

CUSTOM_BACKEND = torch._C._get_privateuse1_backend_name()


def test_torch_is_the_version_the_rules_were_read_from():
    assert torch.__version__.startswith("2.13."), "re-read torch's checks (REFUSALS cite 2.13) for this version"


def test_device_lists_are_torchs_own():
    assert sorted(FUSED_DEVICES) == sorted(d for d in _get_fused_kernels_supported_devices() if d != CUSTOM_BACKEND)
    assert sorted(FOREACH_DEVICES) == sorted(d for d in _get_foreach_kernels_supported_devices()
                                             if d != CUSTOM_BACKEND)
    assert "cpu" in FUSED_DEVICES and "cpu" not in FOREACH_DEVICES and "meta" not in FUSED_DEVICES


def test_choices_are_the_lab_timings_flags():
    assert CHOICES == IMPLEMENTATIONS
    assert {name: implementation_of(flags) for name, flags in CHOICES.items()} == {n: n for n in CHOICES}
    assert implementation_of({"fused": True, "foreach": True}) == "both"
    assert implementation_of({}) == "default" and implementation_of({"fused": 1}) is None


def _optimizer_and_step(refusal):
    dtype, device = refusal.tensor
    if dtype.is_floating_point or dtype.is_complex:
        tensor = nn.Parameter(torch.ones(3, dtype=dtype, device=device))
    else:
        tensor = torch.zeros(3, dtype=dtype, device=device)
    if refusal.grad:
        tensor.grad = torch.ones_like(tensor)
    try:
        optimizer = torch.optim.AdamW([tensor], lr=1e-3, **refusal.kwargs)
    except BaseException as err:  # noqa: BLE001 - what torch raises is what is measured
        return "construction", type(err)
    try:
        optimizer.step()
    except BaseException as err:  # noqa: BLE001
        return "first step", type(err)
    return "ran", None


@pytest.mark.parametrize("refusal", REFUSALS, ids=lambda r: r.name)
def test_each_refusal_is_torchs(refusal):
    assert refusal.source.startswith("torch/")
    assert _optimizer_and_step(refusal) == (refusal.when, refusal.error)


@pytest.mark.parametrize("accepted", ACCEPTED, ids=lambda r: r.name)
def test_each_acceptance_is_torchs(accepted):
    assert _optimizer_and_step(accepted) == ("ran", None)


RUNNABLE_CASES = [case for case in IMPLEMENTATION_CASES
                  if all(device in RUNNABLE for group in case.args[0] for device, _ in group)]


@pytest.mark.parametrize("case", RUNNABLE_CASES, ids=lambda c: c.setting)
def test_reference_agrees_with_torch_where_it_runs(case):
    """A refusal is a request torch refuses; a choice is one torch takes a step with."""
    try:
        choice = reference_choose_implementation(*case.args, **case.kwargs)
    except ValueError:
        asked = {flag: True for flag in ("fused", "foreach") if case.kwargs.get(flag)}
        assert _torch_runs(case, asked), f"the reference refuses {asked}, torch runs it"
        return
    assert _torch_runs(case, choice) == ""


def test_the_cases_cover_what_the_issue_lists():
    settings = " ".join(case.setting for case in IMPLEMENTATION_CASES)
    for words in ("float32", "float64", "bfloat16", "complex64", "int64 buffer", "mixed devices", "CUDA",
                  "Apple-GPU", "fused=True and foreach=True", "empty group"):
        assert words in settings
    assert len(RUNNABLE_CASES) >= 8


def test_refusal_messages_name_the_combination():
    with pytest.raises(ValueError, match="complex64"):
        reference_choose_implementation([[("cpu", torch.complex64)]], fused=True)
    with pytest.raises(ValueError, match="meta"):
        reference_choose_implementation([[("cpu", torch.float32), ("meta", torch.float32)]], fused=True)
    with pytest.raises(ValueError, match="fused=True and foreach=True"):
        reference_choose_implementation([[("cpu", torch.float32)]], fused=True, foreach=True)


def test_without_fused_the_rule_is_torchs_default():
    """With fused ruled out, "fastest" is torch's own default (torch/optim/optimizer.py, _default_to_fused_or_foreach
    with use_fused=False), on every device torch can create here."""
    for device in RUNNABLE:
        for dtype in (torch.float32, torch.complex64):
            params = [torch.ones(2, dtype=dtype, device=device)]
            _, torch_foreach = _default_to_fused_or_foreach(params, differentiable=False, use_fused=False)
            ours = reference_choose_implementation([[(device, dtype)]], fused=False)
            assert implementation_of(ours) == ("foreach" if torch_foreach else "for-loop")


def test_fastest_is_consistent_with_the_labs_operation_count():
    """Section 3 counts fused as the fewest operations per step: the exercise's fastest is fused where allowed."""
    model = xtlab_decoder()
    counts = count_step_operations(model).counts
    assert counts["fused"] < counts["foreach"] < counts["for-loop"]
    assert reference_choose_implementation(tensor_kinds(list(model.parameters()))) == CHOICES["fused"]
    use_fused, _ = _default_to_fused_or_foreach(list(model.parameters()), differentiable=False, use_fused=True)
    assert use_fused  # torch's own rule allows fused on these tensors when asked to consider it


def test_tensor_kinds_reads_groups_and_plain_lists():
    a, b = nn.Parameter(torch.ones(2)), nn.Parameter(torch.ones(2, dtype=torch.float64))
    assert tensor_kinds([{"params": [a]}, {"params": [b]}]) == [[("cpu", torch.float32)], [("cpu", torch.float64)]]
    assert tensor_kinds([a, b]) == [[("cpu", torch.float32), ("cpu", torch.float64)]]
