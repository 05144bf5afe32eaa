"""Lab 02 code that runs inside real FSDP2 processes (``torch.distributed.fsdp.fully_shard``, gloo on CPU).

xtlab's distributed runner spawns the ranks; they import these module-level functions by name. Every rank builds
the same tiny model from the same seed, shards it and reports what it sees. Nothing here imitates FSDP: a scenario
that FSDP refuses reports FSDP's own error.

Everything runs on the CPU, named explicitly: the ranks talk over gloo, every ``fully_shard`` gets a CPU device mesh
(left out, FSDP2 builds its mesh on the machine's accelerator, so on a GPU machine the weights move to CUDA while
the batches stay on the CPU), and every model, batch and generator is built on ``DEVICE``, never on torch's default
device.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict
from torch.distributed.device_mesh import DeviceMesh, init_device_mesh
from torch.distributed.fsdp import fully_shard

from xtlab._checks import check_int, check_number
from xtlab.data import get_batch, load_corpus
from xtlab.labs.weight_tying.models import ModelSize, build_model, embedding_weight, output_weight
from xtlab.training import evaluate_loss, lm_loss

TRAINED_STYLES = ("naive", "tied_linear")
SCENARIO_SIZE = ModelSize()
GROUPINGS = ("root", "separate", "shared")  # every weight in the root's group / own groups / fully_shard([emb, out])
MATERIALISE = ("built", "to_empty_then_wrap", "wrap_then_to_empty")
BACKEND, DEVICE = "gloo", "cpu"  # the same on every machine: a GPU machine runs these ranks on its CPU too


@dataclass(frozen=True)
class Scenario:
    """One way to put a tied model under FSDP.

    Attributes:
        name: a short label. style: ``"naive"``, ``"tied_linear"`` or ``"registered"`` (the article's TiedLinear).
        grouping: ``"root"`` (only ``fully_shard(model)``: embedding and output in the root's group),
            ``"separate"`` (``fully_shard`` on the embedding and on the output first: a group each),
            ``"shared"`` (``fully_shard([token_emb, to_logits])``: one group for both, then the root).
        materialise: ``"built"`` (built with values on the CPU), ``"to_empty_then_wrap"`` (built on ``meta``,
            ``to_empty`` and load the initial values, then shard), ``"wrap_then_to_empty"`` (built on ``meta``,
            sharded, then ``to_empty`` and the initial values loaded through ``set_model_state_dict``).
    """

    name: str
    style: str
    grouping: str = "root"
    materialise: str = "built"


@dataclass(frozen=True)
class ScenarioOutcome:
    """What one rank saw in one scenario.

    Attributes:
        error: ``"Type: message"`` when a stage raised, else None; stage: where (``"wrap"``, ``"step"``) or "".
        tie_parameters: distinct Parameter objects behind the embedding and the output (1 = one weight).
        tie_elements_local: elements of those Parameters stored on this rank (its shards).
        model_elements_local: elements of every parameter stored on this rank.
        same_object: the embedding and the output use one Parameter object after sharding.
        device: the device type of this rank's shards of the tied weight (``DEVICE`` when placed as intended).
        grad_gap: ``||g - g_ref|| / ||g_ref||`` for the embedding's full gradient, where ``g_ref`` is the gradient
            of the same tied model trained without FSDP on the same global batch (0: the output's gradient arrives).
        values_equal_after_step: after one AdamW step the embedding and output hold equal values.
    """

    name: str
    error: str | None = None
    stage: str = ""
    tie_parameters: int = 0
    tie_elements_local: int = 0
    model_elements_local: int = 0
    same_object: bool = False
    device: str = ""
    grad_gap: float = float("nan")
    values_equal_after_step: bool = False


@dataclass(frozen=True)
class TrainConfig:
    """The Lingua replay: train under FSDP, evaluate in memory, hand back the full state dict."""

    styles: tuple[str, ...] = ("naive", "tied_linear")
    seeds: tuple[int, ...] = (0, 1, 2)
    steps: int = 60
    lr: float = 2e-2
    batch_size: int = 8
    seq_len: int = 32
    val_batches: int = 2
    embedding_std: float = 0.02
    size: ModelSize = ModelSize(num_tokens=44, max_seq_len=32, dim=32, depth=2, heads=2)  # 44: corpus vocabulary

    def __post_init__(self) -> None:
        if not isinstance(self.styles, tuple) or not self.styles or not set(self.styles) <= set(TRAINED_STYLES):
            raise ValueError(f"styles must be a non-empty tuple drawn from {TRAINED_STYLES}, but got {self.styles!r}")
        if not isinstance(self.seeds, tuple) or not self.seeds:
            raise ValueError(f"seeds must be a non-empty tuple of ints, but got {self.seeds!r}")
        for seed in self.seeds:
            check_int("seed", seed, minimum=0)
        check_int("steps", self.steps, minimum=1)
        check_number("lr", self.lr, minimum=1e-12)
        check_int("batch_size", self.batch_size, minimum=1)
        check_int("seq_len", self.seq_len, minimum=1, maximum=self.size.max_seq_len)
        check_int("val_batches", self.val_batches, minimum=1)
        check_number("embedding_std", self.embedding_std, minimum=1e-12)


@dataclass(frozen=True)
class TrainOutcome:
    """One style and seed trained under FSDP (``to_empty_then_wrap``), as rank ``rank`` saw it.

    Attributes:
        train_losses: the loss of each step, averaged over ranks. val_in_memory: validation loss of the sharded
            model right after training. state: the full state dict (rank 0 only, else None).
        tie_parameters: distinct Parameter objects behind embedding and output while training.
    """

    style: str
    seed: int
    tie_parameters: int
    train_losses: tuple[float, ...]
    val_in_memory: float
    state: dict[str, torch.Tensor] | None = field(default=None, repr=False)


def _tie_parameters(model: nn.Module) -> list[nn.Parameter]:
    first, second = embedding_weight(model), output_weight(model)
    return [first] if first is second else [first, second]


def _local(parameter: torch.Tensor) -> torch.Tensor:
    return parameter.to_local() if hasattr(parameter, "to_local") else parameter


def _local_numel(parameter: torch.Tensor) -> int:
    return _local(parameter).numel()


def _full(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.full_tensor() if hasattr(tensor, "full_tensor") else tensor


def _error_text(err: BaseException) -> str:
    return f"{type(err).__name__}: {' '.join(str(err).split())}"


def cpu_mesh() -> DeviceMesh:
    """A one-dimensional mesh of every rank on ``DEVICE`` (FSDP2's default mesh would be on the accelerator)."""
    return init_device_mesh(DEVICE, (dist.get_world_size(),))


def shard(model: nn.Module, grouping: str) -> nn.Module:
    """Apply ``fully_shard`` to ``model`` as ``grouping`` says (inner groups first, the root last), on a CPU mesh."""
    mesh = cpu_mesh()
    if grouping == "separate":
        fully_shard(model.token_emb, mesh=mesh)
        if any(True for _ in model.to_logits.parameters()):  # TiedLinear owns none: nothing to group
            fully_shard(model.to_logits, mesh=mesh)
    elif grouping == "shared":
        fully_shard([model.token_emb, model.to_logits], mesh=mesh)
    fully_shard(model, mesh=mesh)
    return model


def initial_state(style: str, seed: int, size: ModelSize, embedding_std: float | None = None) -> dict:
    """The values every scenario starts from: ``build_model(style, seed=seed)``'s, with the embedding redrawn from
    N(0, ``embedding_std``) when given (GPT-2's small init, so a tied output starts with small logits)."""
    model = build_model(style, seed=seed, size=size, device=DEVICE)
    if embedding_std is not None:
        with torch.no_grad():
            embedding_weight(model).normal_(0.0, embedding_std, generator=torch.Generator().manual_seed(seed))
    return model.state_dict()


def materialised(scenario: Scenario, initial: dict, seed: int, size: ModelSize) -> nn.Module:
    """The scenario's model, sharded, holding the values ``initial``."""
    if scenario.materialise == "built":
        model = build_model(scenario.style, seed=seed, size=size, device=DEVICE)
        model.load_state_dict(initial)
        return shard(model, scenario.grouping)
    model = build_model(scenario.style, seed=seed, size=size, device="meta")
    if scenario.materialise == "to_empty_then_wrap":
        model.to_empty(device=DEVICE)
        model.load_state_dict(initial)
        return shard(model, scenario.grouping)
    shard(model, scenario.grouping)
    model.to_empty(device=DEVICE)
    set_model_state_dict(model, initial, options=StateDictOptions(full_state_dict=True))
    return model


def _random_batch(rank: int, seed: int, num_tokens: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator(device=DEVICE).manual_seed(seed * 1000 + rank)
    x = torch.randint(0, num_tokens, (4, 12), generator=generator, device=DEVICE)
    return x, torch.roll(x, -1, dims=1)


def _reference_gradient(style: str, seed: int, size: ModelSize, world_size: int) -> torch.Tensor:
    """The embedding's gradient of the tied model without FSDP, on every rank's batch at once."""
    model = build_model(style, seed=seed, size=size, device=DEVICE)
    batches = [_random_batch(rank, seed, size.num_tokens) for rank in range(world_size)]
    lm_loss(model, tuple(torch.cat(parts) for parts in zip(*batches, strict=True))).backward()
    return embedding_weight(model).grad.detach().clone()


def run_scenario(scenario: Scenario, rank: int, world_size: int, seed: int = 0,
                 size: ModelSize = SCENARIO_SIZE) -> ScenarioOutcome:
    """Shard, measure, take one AdamW step on this rank's batch, measure again; FSDP's errors are reported."""
    try:
        model = materialised(scenario, initial_state(scenario.style, seed, size), seed, size)
    except Exception as err:  # FSDP refusing a layout is the measurement
        return ScenarioOutcome(scenario.name, _error_text(err), "wrap")
    tie = _tie_parameters(model)
    counts = {"tie_parameters": len(tie), "tie_elements_local": sum(_local_numel(p) for p in tie),
              "model_elements_local": sum(_local_numel(p) for p in model.parameters()),
              "same_object": len(tie) == 1, "device": _local(tie[0]).device.type}
    try:
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
        lm_loss(model, _random_batch(rank, seed, size.num_tokens)).backward()
        gradient = _full(embedding_weight(model).grad)
        reference = _reference_gradient(scenario.style, seed, size, world_size)
        gap = float((gradient - reference).norm() / reference.norm())
        optimizer.step()
        equal = torch.equal(_full(embedding_weight(model).detach()), _full(output_weight(model).detach()))
    except Exception as err:
        return ScenarioOutcome(scenario.name, _error_text(err), "step", **counts)
    return ScenarioOutcome(scenario.name, None, "", grad_gap=gap, values_equal_after_step=equal, **counts)


def corpus_batches(split: str, seed: int, rank: int, world_size: int, config: TrainConfig):
    """``batch(step) -> (x, y)`` from the bundled corpus: each rank its own training batches, every rank the same
    validation batches."""
    with torch.device(DEVICE):  # load_corpus builds (and caches) its ids on the default device
        corpus = load_corpus()
    data = corpus.train if split == "train" else corpus.val

    def batch(step: int):
        # training: each rank its own batch; validation: the same batches on every rank
        stream = step * world_size + rank if split == "train" else step
        generator = torch.Generator(device=DEVICE).manual_seed(seed * 100_003 + stream)
        with torch.device(DEVICE):  # get_batch builds its offsets on the default device
            return get_batch(data, config.batch_size, config.seq_len, generator, device=DEVICE)

    return batch


def train_sharded(style: str, seed: int, rank: int, world_size: int, config: TrainConfig) -> TrainOutcome:
    """Build on ``meta``, ``to_empty``, load the initial values, shard (one root group), train, evaluate."""
    initial = initial_state(style, seed, config.size, config.embedding_std)
    model = materialised(Scenario("train", style, "root", "to_empty_then_wrap"), initial, seed, config.size)
    tie_parameters = len(_tie_parameters(model))
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr)
    batches = corpus_batches("train", seed, rank, world_size, config)
    losses = []
    for step in range(config.steps):
        loss = lm_loss(model, batches(step))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        mean = loss.detach().clone()
        dist.all_reduce(mean)
        losses.append(float(mean) / world_size)
    val = evaluate_loss(model, corpus_batches("val", seed, rank, world_size, config), config.val_batches)
    state = {key: _full(value.detach()).clone() for key, value in model.state_dict().items()}  # collective
    return TrainOutcome(style, seed, tie_parameters, tuple(losses), val, state if rank == 0 else None)


def fsdp_rank(rank: int, world_size: int, scenarios: tuple[Scenario, ...],
              config: TrainConfig | None) -> tuple[tuple[ScenarioOutcome, ...], tuple[TrainOutcome, ...]]:
    """Everything one rank does in one launch: every scenario, then the Lingua replay (when ``config``)."""
    outcomes = tuple(run_scenario(scenario, rank, world_size) for scenario in scenarios)
    trained = () if config is None else tuple(train_sharded(style, seed, rank, world_size, config)
                                              for seed in config.seeds for style in config.styles)
    return outcomes, trained
