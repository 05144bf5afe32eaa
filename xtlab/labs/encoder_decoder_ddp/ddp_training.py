"""Lab 05 training functions that run inside real DDP processes (the xtlab DDP runner spawns them).

They are module-level so spawned children can import them by name. Each rank builds the same model from the
same seed, reads its own batches (generator ``seed + 100 + rank``) and wraps the model in
``DistributedDataParallel``. Layer dropout draws from torch's CPU RNG, seeded alike on every rank, so all ranks
skip the same blocks: the failure is then the same error on every rank, not one rank waiting forever.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from xtlab.data.seq2seq import make_seq2seq_batch
from xtlab.labs.encoder_decoder_ddp.experiments import SEQ_LENGTH, build_seq2seq_model


@dataclass(frozen=True)
class DDPTrainConfig:
    """One DDP training run.

    Attributes:
        name: a label for reports. encoder_keeps_logits: the bug. find_unused_parameters: DDP's escape hatch.
        dec_layer_dropout: decoder layer dropout (lab 01). steps: optimizer steps (the bug fails on the second).
        timed_steps: steps, after ``steps``, whose time is measured (0: none). dim, batch_size, seed: the model/data.
    """

    name: str = "fixed"
    encoder_keeps_logits: bool = False
    find_unused_parameters: bool = False
    dec_layer_dropout: float = 0.0
    steps: int = 3
    timed_steps: int = 0
    dim: int = 32
    batch_size: int = 8
    seed: int = 0


@dataclass(frozen=True)
class RankOutcome:
    """What one rank reports for one config.

    Attributes:
        name: the config's name. ok: trained without error. error: ``"Type: message"`` when not ok.
        checksum: sha256 of every parameter's bytes after training (DDP: equal on every rank).
        local_checksum: the same model trained ``steps`` steps on this rank's batches without DDP (ranks differ).
        losses: loss per step. step_ms: milliseconds of each timed step. skipped: blocks skipped per step.
    """

    name: str
    ok: bool
    error: str = ""
    checksum: str = ""
    local_checksum: str = ""
    losses: list[float] = field(default_factory=list)
    step_ms: list[float] = field(default_factory=list)
    skipped: list[list[str]] = field(default_factory=list)


def parameter_checksum(model: torch.nn.Module) -> str:
    """sha256 over every parameter's name and bytes: equal only when two models hold bit-identical weights."""
    digest = hashlib.sha256()
    for name, param in model.named_parameters():
        digest.update(name.encode())
        digest.update(param.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _rank_device(rank: int) -> torch.device:
    return torch.device("cuda", rank) if dist.is_initialized() and dist.get_backend() == "nccl" else torch.device("cpu")


def _train_steps(model, inner, config: DDPTrainConfig, rank: int, device, outcome_lists, total_steps: int) -> None:
    losses, step_ms, skipped = outcome_lists
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    rows = torch.Generator().manual_seed(config.seed + 100 + rank)
    for step in range(total_steps):
        batch = make_seq2seq_batch("reverse", config.batch_size, SEQ_LENGTH, generator=rows, device=device)
        start = time.perf_counter()
        loss = model(batch.src, batch.tgt)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if step >= config.steps:
            step_ms.append((time.perf_counter() - start) * 1e3)
        losses.append(loss.item())
        skipped.append(inner.decoder.skipped_blocks)


def train_ddp_xtransformer(rank: int, world_size: int, config: DDPTrainConfig) -> RankOutcome:
    """Train the lab's encoder–decoder under DDP with ``config``; errors propagate (the runner reports them).

    Needs an initialised process group (the xtlab DDP runner provides it). Returns this rank's outcome.
    """
    dist.set_debug_level(dist.DebugLevel.INFO)  # DDP's error then names the parameters that got no gradient
    device = _rank_device(rank)
    model = build_seq2seq_model(encoder_keeps_logits=config.encoder_keeps_logits, dim=config.dim,
                                dec_layer_dropout=config.dec_layer_dropout, seed=config.seed).to(device)
    ddp = DistributedDataParallel(model, find_unused_parameters=config.find_unused_parameters)
    losses, step_ms, skipped = [], [], []
    torch.manual_seed(config.seed)  # the same layer-dropout draws on every rank
    _train_steps(ddp, model, config, rank, device, (losses, step_ms, skipped), config.steps + config.timed_steps)
    local = build_seq2seq_model(encoder_keeps_logits=config.encoder_keeps_logits, dim=config.dim,
                                dec_layer_dropout=config.dec_layer_dropout, seed=config.seed).to(device)
    torch.manual_seed(config.seed)
    _train_steps(local, local, config, rank, device, ([], [], []), config.steps)
    return RankOutcome(config.name, True, checksum=parameter_checksum(model), local_checksum=parameter_checksum(local),
                       losses=losses, step_ms=step_ms, skipped=skipped)


def train_ddp_configs(rank: int, world_size: int, configs: tuple[DDPTrainConfig, ...]) -> list[RankOutcome]:
    """Run several configs one after another in one process group, recording each one's error instead of raising.

    Why: starting the processes costs seconds on a small CPU; one start for several runs keeps the lab fast.
    Put failing configs after the passing ones: a failed DDP instance may leave gradient reductions unfinished
    (two failing configs in a row were checked to report their own errors).
    """
    outcomes = []
    for config in configs:
        try:
            outcomes.append(train_ddp_xtransformer(rank, world_size, config))
        except RuntimeError as err:
            outcomes.append(RankOutcome(config.name, False, error=f"{type(err).__name__}: {err}"))
    return outcomes
