import multiprocessing
import time

import pytest
import torch

from tests.diagnostics.ddp_train_functions import (
    TwoHeads,
    fail_on_rank_one,
    hang_on_rank_one,
    train_library_model,
    train_two_heads,
)
from tests.diagnostics.models import xtlab_decoder
from xtlab.diagnostics.ddp_runner import default_backend, run_distributed

# real processes importing torch: seconds each on a 2-core machine
pytestmark = pytest.mark.slow

DDP_UNUSED_FAMILY = "Expected to have finished reduction in the prior iteration"
# the default "spawn" imports torch afresh in every rank (~10 s here under load); most tests use a forkserver
# that has imported torch once, and one test keeps the default path honest
FAST = "forkserver"
multiprocessing.set_forkserver_preload(
    ["torch", "torch.distributed", "torch.nn.parallel", "x_transformers", "ddp_train_functions"]
)


def assert_no_rank_process_left() -> None:
    assert [child for child in multiprocessing.active_children() if child.name.startswith("xtlab-ddp")] == []


def assert_identical_across_ranks(run) -> None:
    first = run.ranks[0].value
    for rank in run.ranks[1:]:
        assert first.keys() == rank.value.keys()
        assert all(torch.equal(first[name], rank.value[name]) for name in first)


def test_unused_parameter_surfaces_the_real_ddp_error():
    run = run_distributed(train_two_heads, 2, args=(True, False), timeout_s=120)
    assert not run.ok and run.backend == "gloo"
    for rank in (0, 1):
        assert DDP_UNUSED_FAMILY in run.errors[rank]
        assert "find_unused_parameters=True" in run.errors[rank]
    assert_no_rank_process_left()


@pytest.mark.parametrize("library", ["x_transformers", "xtlab"])
def test_real_models_with_an_unused_output_projection_fail_under_ddp(library):
    if library == "xtlab":
        xtlab_decoder()  # skips until xtlab.model has landed
    run = run_distributed(train_library_model, 2, args=(library,), timeout_s=120, start_method=FAST)
    assert not run.ok
    assert all(DDP_UNUSED_FAMILY in error for error in run.errors.values()), run.errors
    assert_no_rank_process_left()


def test_find_unused_parameters_true_trains_with_the_bug():
    run = run_distributed(train_two_heads, 2, args=(True, True), timeout_s=120, start_method=FAST)
    assert run.ok, run.errors
    assert_identical_across_ranks(run)
    assert_no_rank_process_left()


def test_fixed_model_trains_and_ranks_end_identical():
    run = run_distributed(train_two_heads, 2, args=(False, False), timeout_s=120, start_method=FAST)
    assert run.ok, run.errors
    assert_identical_across_ranks(run)
    torch.manual_seed(0)
    initial = TwoHeads(with_unused_head=False)
    assert not torch.equal(run.ranks[0].value["head.weight"], initial.head.weight)  # it trained
    assert_no_rank_process_left()


@pytest.mark.parametrize(("how", "named"), [("raise", "rank one broke on purpose"), ("exit", "died with exit code 3")])
def test_a_failing_rank_returns_within_the_timeout_with_its_error(how, named):
    timeout_s = 120
    started = time.monotonic()
    run = run_distributed(
        fail_on_rank_one, 2, args=(how,), timeout_s=timeout_s, grace_after_failure_s=1.0, start_method=FAST
    )
    assert time.monotonic() - started < timeout_s
    assert named in run.errors[1]
    assert 0 in run.errors  # rank 0 was blocked in a barrier: stopped, or told its peer was gone
    assert_no_rank_process_left()


def test_a_hanging_rank_is_stopped_at_the_timeout():
    started = time.monotonic()
    run = run_distributed(hang_on_rank_one, 2, timeout_s=6, start_method=FAST)
    assert time.monotonic() - started < 6 + 10
    assert run.ranks[0].ok and run.ranks[0].value == 0
    assert "did not finish within timeout_s=6" in run.errors[1]
    assert_no_rank_process_left()


def test_default_backend_is_gloo_without_one_gpu_per_rank():
    expected = "nccl" if torch.cuda.device_count() >= 2 else "gloo"
    assert default_backend(2) == expected


@pytest.mark.parametrize(
    ("kwargs", "error", "named"),
    [
        ({"train_fn": None}, TypeError, "train_fn must be callable, but got NoneType"),
        ({"train_fn": lambda rank, size: rank}, TypeError, "must pickle"),
        ({"world_size": 0}, ValueError, "world_size must be >= 1, but got 0"),
        ({"timeout_s": -1}, ValueError, "timeout_s must be >= 0.001, but got -1"),
        ({"backend": "mpi"}, ValueError, "'mpi'"),
        ({"args": [1]}, TypeError, r"args must be a tuple, but got list: \[1\]"),
        ({"start_method": "teleport"}, ValueError, "'teleport'"),
    ],
)
def test_bad_input_is_named(kwargs, error, named):
    with pytest.raises(error, match=named):
        run_distributed(**({"train_fn": hang_on_rank_one} | kwargs))
