"""Lab 02's FSDP code builds everything on the CPU it names, whatever torch's default device is, and hands every
``fully_shard`` a CPU mesh: on a GPU machine FSDP2's default mesh is CUDA's, which put the weights on the GPU while
the batches stayed on the CPU ("target is on cpu, different from other tensors"). Run in this process as a
one-rank gloo group, with the default device set to ``meta`` so that anything built on the default device fails."""

import pytest
import torch
import torch.distributed as dist

from xtlab.labs.weight_tying import fsdp_ranks
from xtlab.labs.weight_tying.fsdp_ranks import (
    DEVICE,
    SCENARIO_SIZE,
    Scenario,
    TrainConfig,
    corpus_batches,
    run_scenario,
    train_sharded,
)
from xtlab.labs.weight_tying.fsdp_runs import SCENARIOS, reload_without_fsdp
from xtlab.labs.weight_tying.models import ModelSize


@pytest.fixture
def one_rank_on_a_meta_default(tmp_path, monkeypatch):
    """A one-rank gloo group, every ``fully_shard`` call recorded, torch's default device set to ``meta``."""
    if dist.is_initialized():
        pytest.skip("a process group is already running in this process")
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    meshes = []
    real = fsdp_ranks.fully_shard

    def recording(module, *args, **kwargs):
        meshes.append(kwargs.get("mesh"))
        return real(module, *args, **kwargs)

    monkeypatch.setattr(fsdp_ranks, "fully_shard", recording)
    torch.set_default_device("meta")
    try:
        yield meshes
    finally:
        torch.set_default_device(None)
        dist.destroy_process_group()


def test_the_backend_and_device_are_stated():
    assert (fsdp_ranks.BACKEND, DEVICE) == ("gloo", "cpu")


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[scenario.name for scenario in SCENARIOS])
def test_every_scenario_runs_on_the_cpu_mesh_whatever_the_default_device(one_rank_on_a_meta_default, scenario):
    outcome = run_scenario(scenario, rank=0, world_size=1)
    meshes = one_rank_on_a_meta_default
    assert meshes and all(mesh is not None and mesh.device_type == "cpu" for mesh in meshes)
    if outcome.error is None or outcome.stage == "step":
        assert outcome.device == "cpu"
    assert "meta" not in (outcome.error or ""), outcome.error  # nothing the scenario uses came from the default


def test_training_and_reloading_build_on_the_cpu(one_rank_on_a_meta_default):
    config = TrainConfig(seeds=(0,), steps=2, val_batches=1)
    trained = train_sharded("tied_linear", 0, rank=0, world_size=1, config=config)
    assert all(value.device.type == "cpu" for value in trained.state.values())
    x, y = corpus_batches("train", 0, 0, 1, config)(0)
    assert x.device.type == y.device.type == "cpu"
    row = reload_without_fsdp(trained, config, world_size=1)
    assert row.verdict_reloaded == "tied"


def test_the_scenario_size_and_the_replay_size_differ_from_a_default_model():
    assert SCENARIO_SIZE == ModelSize() and Scenario("x", "naive").materialise == "built"
