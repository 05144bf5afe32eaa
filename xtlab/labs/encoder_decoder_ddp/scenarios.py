"""Lab 05 DDP scenarios: what to train under ``DistributedDataParallel`` and with which settings, and the function
every rank runs (module-level, so the spawned ranks of xtlab's DDP runner can import it).

A scenario names the model (the encoder that keeps its unused ``to_logits``, the fixed one, decoder layer dropout
with skips scripted per rank or drawn per rank), the DDP settings (``find_unused_parameters``, ``static_graph``), the
debug level (``TORCH_DISTRIBUTED_DEBUG``) and a collective timeout: a rank blocked in a gradient all-reduce that
its peer never joins raises after that many seconds, so a hang becomes an outcome instead of a stuck notebook.

Several scenarios run in one launch (starting the ranks costs seconds). Each gets its own process group, so a
collective left unfinished by one scenario cannot block the next, and the ranks meet at a barrier on the default
group (never used by DDP here) before each one.

Where the lab puts things, so the outcome is the same on every machine: gloo on the CPU, the model and batches
built on the CPU whatever the default device is, and two timeouts. Building the model and wrapping it in DDP (its
constructor broadcasts the weights: collectives) run under ``SETUP_TIMEOUT_S``, then the ranks meet at a barrier
and only the training steps run under the scenario's short collective timeout. A slow start on a loaded machine is
then never mistaken for a hang: "hung" means a rank waited in a training collective its peer never joined.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import time
from dataclasses import dataclass, field
from datetime import timedelta

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from xtlab._checks import check_bool, check_choice, check_int, check_number, check_probability, check_str
from xtlab.data.seq2seq import make_seq2seq_batch
from xtlab.labs.encoder_decoder_ddp.experiments import SEQ_LENGTH, build_seq2seq_model

DEBUG_LEVELS = ("OFF", "INFO", "DETAIL")
PHASES = ("building the model", "forward", "backward", "optimizer step")
BATCH_SIZE = 4
LEARNING_RATE = 0.1
SETUP_TIMEOUT_S = 60.0  # building and wrapping the model on a loaded machine; never what a training step waits
DEVICE = torch.device("cpu")  # every scenario, on every machine: gloo on the CPU


def _check_skips(skips) -> tuple[tuple[tuple[int, ...], ...], ...] | None:
    """``skips[rank][step]``: the decoder block indices that rank skips at that step (0-based)."""
    if skips is None:
        return None
    if not isinstance(skips, (tuple, list)) or not skips:
        raise TypeError(f"skips must be None or a non-empty tuple (one entry per rank) of tuples (one per step) of "
                        f"block indices, but got {skips!r:.80}")
    checked = []
    for rank, per_step in enumerate(skips):
        if not isinstance(per_step, (tuple, list)):
            raise TypeError(f"skips[{rank}] must be a tuple with one tuple of block indices per step, "
                            f"but got {per_step!r:.80}")
        steps = []
        for step, blocks in enumerate(per_step):
            if not isinstance(blocks, (tuple, list)):
                raise TypeError(f"skips[{rank}][{step}] must be a tuple of block indices, but got {blocks!r:.80}")
            steps.append(tuple(sorted({check_int(f"skips[{rank}][{step}] item", b, minimum=0) for b in blocks})))
        checked.append(tuple(steps))
    return tuple(checked)


@dataclass(frozen=True)
class DDPScenario:
    """One DDP run on the lab's encoder–decoder.

    Attributes:
        name: the run's name, as the notebook and the reports call it.
        encoder_keeps_logits: the bug: the encoder owns a ``to_logits`` its forward never uses.
        depth: layers per stack (the decoder has 3 blocks per layer: attn, cross, ff).
        layer_dropout: decoder layer dropout probability for real draws (ignored when ``skips`` is given).
        skips: scripted skips, ``skips[rank][step]`` = decoder block indices that rank skips at that step (steps
            past the script skip nothing); ``None`` uses real draws.
        same_skips_on_every_rank: real draws seeded alike on every rank (``seed``) instead of per rank
            (``seed + rank``).
        find_unused_parameters, static_graph: DDP's settings.
        debug: ``TORCH_DISTRIBUTED_DEBUG`` inside each rank while DDP runs: ``"OFF"``, ``"INFO"`` or ``"DETAIL"``.
        steps: training steps (forward, backward, SGD step).
        collective_timeout_s: how long a rank waits in a collective before it raises.
        record_gradients: return every parameter's gradient after the first backward, under DDP and for a copy
            trained without DDP on the same batch and skips.
        control_without_ddp: also train a copy without DDP and return its checksum.
        model_bytes: a pickled model to train instead of building one (an exercise answer).
        seed: model weights (``seed``), batches (``seed + 100 + rank``) and real skip draws.
    """

    name: str
    encoder_keeps_logits: bool = False
    depth: int = 1
    layer_dropout: float = 0.0
    skips: tuple | None = None
    same_skips_on_every_rank: bool = False
    find_unused_parameters: bool = False
    static_graph: bool = False
    debug: str = "OFF"
    steps: int = 3
    collective_timeout_s: float = 2.0
    record_gradients: bool = False
    control_without_ddp: bool = False
    model_bytes: bytes | None = field(default=None, repr=False)
    seed: int = 0

    def __post_init__(self) -> None:
        check_str("name", self.name)
        if not self.name:
            raise ValueError("name must not be empty")
        for flag in ("encoder_keeps_logits", "same_skips_on_every_rank", "find_unused_parameters", "static_graph",
                     "record_gradients", "control_without_ddp"):
            check_bool(flag, getattr(self, flag))
        check_int("depth", self.depth, minimum=1, maximum=4)
        check_probability("layer_dropout", self.layer_dropout)
        object.__setattr__(self, "skips", _check_skips(self.skips))
        check_choice("debug", self.debug, DEBUG_LEVELS)
        check_int("steps", self.steps, minimum=1, maximum=50)
        check_number("collective_timeout_s", self.collective_timeout_s, minimum=0.5, maximum=60)
        check_int("seed", self.seed, minimum=0)
        if self.model_bytes is not None and not isinstance(self.model_bytes, bytes):
            raise TypeError(f"model_bytes must be None or bytes (a pickled model), but got "
                            f"{type(self.model_bytes).__name__}")

    @property
    def settings(self) -> str:
        """The DDP settings in one line, as code would write them."""
        return (f"find_unused_parameters={self.find_unused_parameters}, static_graph={self.static_graph}, "
                f"TORCH_DISTRIBUTED_DEBUG={self.debug}")


@dataclass(frozen=True)
class RankOutcome:
    """What one rank did in one scenario.

    Attributes:
        name: the scenario's name. rank: the rank.
        ok: every step finished. steps_done: steps that finished.
        failed_step / failed_phase: 1-based step (``None`` while building the model) and phase that raised.
        seconds: from the first forward to the end (or to the exception).
        error: ``"Type: message"`` of the exception, ``""`` when ok.
        skipped: the decoder blocks this rank skipped, per step run.
        checksum: sha256 of the parameters after training (``""`` on error).
        local_checksum: the same for a copy trained without DDP (``""`` unless ``control_without_ddp``).
        grads / local_grads: name -> gradient after the first backward (``None`` where there was none), under
            DDP and without it (empty unless ``record_gradients``).
    """

    name: str
    rank: int
    ok: bool
    steps_done: int
    failed_step: int | None = None
    failed_phase: str = ""
    seconds: float = 0.0
    error: str = ""
    skipped: tuple[tuple[int, ...], ...] = ()
    checksum: str = ""
    local_checksum: str = ""
    grads: dict = field(default_factory=dict, repr=False)
    local_grads: dict = field(default_factory=dict, repr=False)


def parameter_checksum(model: torch.nn.Module) -> str:
    """sha256 over every parameter's name and bytes: equal only when two models hold bit-identical weights."""
    digest = hashlib.sha256()
    for name, param in model.named_parameters():
        digest.update(name.encode())
        digest.update(param.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


class ScriptedSkips:
    """Stands in for ``AttentionLayers.draw_skips``: returns this rank's scripted skips, one step per call."""

    def __init__(self, per_step: tuple[tuple[int, ...], ...], num_blocks: int):
        self.per_step, self.num_blocks, self.calls = per_step, num_blocks, 0

    def __call__(self) -> list[bool]:
        skipped = self.per_step[self.calls] if self.calls < len(self.per_step) else ()
        self.calls += 1
        return [index in skipped for index in range(self.num_blocks)]


def build_scenario_model(scenario: DDPScenario, rank: int) -> torch.nn.Module:
    """The model ``scenario`` trains on ``rank``: built from ``scenario.seed`` (same weights on every rank), with
    its decoder's skips scripted or its layer-dropout draws seeded per rank (or alike on every rank)."""
    if scenario.model_bytes is not None:
        model = pickle.loads(scenario.model_bytes).to(DEVICE)
        model.train()
        return model
    dropout = scenario.layer_dropout if scenario.skips is None else 0.5  # any p > 0: the script decides
    with DEVICE:  # on the CPU even where a caller set another default device
        model = build_seq2seq_model(encoder_keeps_logits=scenario.encoder_keeps_logits, depth=scenario.depth,
                                    dec_layer_dropout=dropout, seed=scenario.seed)
    layers = model.decoder.attn_layers
    if scenario.skips is not None:
        layers.draw_skips = ScriptedSkips(scenario.skips[rank], len(layers.layers))
    else:
        torch.manual_seed(scenario.seed if scenario.same_skips_on_every_rank else scenario.seed + rank)
    return model


def _skipped_now(model: torch.nn.Module) -> tuple[int, ...]:
    layers = getattr(getattr(model, "decoder", None), "attn_layers", None)
    return tuple(getattr(layers, "last_skipped", ()))


def _batches(scenario: DDPScenario, rank: int) -> list:
    rows = torch.Generator(device=DEVICE).manual_seed(scenario.seed + 100 + rank)
    with DEVICE:
        return [make_seq2seq_batch("reverse", BATCH_SIZE, SEQ_LENGTH, generator=rows, device=DEVICE)
                for _ in range(scenario.steps)]


def _grads(model: torch.nn.Module) -> dict:
    return {name: None if p.grad is None else p.grad.detach().clone() for name, p in model.named_parameters()}


def _without_ddp(scenario: DDPScenario, rank: int, batches: list, steps: int, *, update: bool = True):
    """The same model, batches and skips on this rank alone (the control): ``steps`` forward/backward passes,
    each followed by an SGD step when ``update``."""
    model = build_scenario_model(scenario, rank)
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)
    for batch in batches[:steps]:
        optimizer.zero_grad(set_to_none=True)
        model(batch.src, batch.tgt).backward()
        if update:
            optimizer.step()
    return model


def _training_timeout(group, scenario: DDPScenario) -> None:
    """From here on a collective of ``group`` waits at most the scenario's timeout (setup ran under a long one)."""
    timeout = timedelta(seconds=scenario.collective_timeout_s)
    dist.distributed_c10d._set_pg_timeout(timeout, group)


def _set_debug(level: str) -> None:
    os.environ["TORCH_DISTRIBUTED_DEBUG"] = level
    dist.set_debug_level_from_env()


def run_scenario_on_rank(rank: int, world_size: int, scenario: DDPScenario) -> RankOutcome:
    """Train ``scenario`` on this rank under DDP in a new process group; an exception becomes the outcome.

    ``TORCH_DISTRIBUTED_DEBUG`` is set in this rank's environment and read with ``set_debug_level_from_env``
    after the scenario's group exists: a group created at level DETAIL is wrapped in a collective checker,
    and DDP on such a gloo group crashed the ranks with a segmentation fault on the torch this lab was built with.
    """
    _set_debug("OFF")
    group = dist.new_group(backend="gloo", timeout=timedelta(seconds=SETUP_TIMEOUT_S))
    _set_debug(scenario.debug)
    skipped: list[tuple[int, ...]] = []
    step, phase, start = 0, "building the model", time.perf_counter()
    grads: dict = {}
    try:
        model = build_scenario_model(scenario, rank)
        ddp = DistributedDataParallel(model, process_group=group,
                                      find_unused_parameters=scenario.find_unused_parameters,
                                      static_graph=scenario.static_graph)
        optimizer = torch.optim.SGD(ddp.parameters(), lr=LEARNING_RATE)
        batches = _batches(scenario, rank)
        dist.barrier(group=group)  # every rank is built and wrapped: only training collectives from here
        _training_timeout(group, scenario)
        start = time.perf_counter()
        for step, batch in enumerate(batches, start=1):
            phase = "forward"
            optimizer.zero_grad(set_to_none=True)
            loss = ddp(batch.src, batch.tgt)
            skipped.append(_skipped_now(model))
            phase = "backward"
            loss.backward()
            if step == 1 and scenario.record_gradients:
                grads = _grads(model)
            phase = "optimizer step"
            optimizer.step()
    except Exception as err:  # the outcome under study: reported, never raised
        return RankOutcome(scenario.name, rank, False, max(step - 1, 0), step or None, phase,
                           time.perf_counter() - start, f"{type(err).__name__}: {err}", tuple(skipped))
    finally:
        _set_debug("OFF")
    seconds = time.perf_counter() - start
    local_grads = _grads(_without_ddp(scenario, rank, batches, 1, update=False)) if scenario.record_gradients else {}
    local = parameter_checksum(_without_ddp(scenario, rank, batches, scenario.steps)) \
        if scenario.control_without_ddp else ""
    return RankOutcome(scenario.name, rank, True, scenario.steps, seconds=seconds, skipped=tuple(skipped),
                       checksum=parameter_checksum(model), local_checksum=local, grads=grads, local_grads=local_grads)


def run_scenarios_on_rank(rank: int, world_size: int, scenarios: tuple[DDPScenario, ...]) -> list[RankOutcome]:
    """The train function the DDP runner starts on every rank: each scenario in turn, after a barrier."""
    torch.set_num_threads(1)
    outcomes = []
    for scenario in scenarios:
        dist.barrier()  # the default group: DDP never used it, so no unfinished collective can block it
        outcomes.append(run_scenario_on_rank(rank, world_size, scenario))
    return outcomes
