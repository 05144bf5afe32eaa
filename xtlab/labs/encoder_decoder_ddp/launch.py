"""Lab 05: launch the DDP training functions through the xtlab DDP runner and distil what each rank reported
into deterministic text (first sentence of each error, names of parameters without gradient, whether ranks agree).
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass

from xtlab.diagnostics import ddp_runner
from xtlab.labs.encoder_decoder_ddp.ddp_training import (
    DDPTrainConfig,
    RankOutcome,
    train_ddp_configs,
    train_ddp_xtransformer,
)

_EXCEPTION_LINE = re.compile(r"^(\w+(?:Error|Exception|Interrupt|Exit)): ", re.MULTILINE)
_UNUSED_LINE = re.compile(r"Parameters which did not receive grad for rank \d+: (.+)")


def first_sentence(error_text: str) -> str:
    """``"RuntimeError: Expected ... one."`` from a traceback or ``"Type: message"`` text: the exception type and the
    first sentence of its message (the rest of PyTorch's message is advice, and tracebacks hold file paths)."""
    matches = list(_EXCEPTION_LINE.finditer(error_text))
    if not matches:
        return error_text.strip().splitlines()[0] if error_text.strip() else ""
    last = matches[-1]
    message = error_text[last.end():].strip()
    sentence = re.match(r"(.+?[.!?])(?=\s|$)", message, re.DOTALL)
    text = (sentence.group(1) if sentence else message.splitlines()[0]).replace("\n", " ")
    return f"{last.group(1)}: {text}"


def parameters_named_in_error(error_text: str) -> tuple[str, ...]:
    """The parameter names DDP lists as having received no gradient, sorted (needs DDP's debug level INFO)."""
    found = _UNUSED_LINE.search(error_text)
    return tuple(sorted(name.strip() for name in found.group(1).split(","))) if found else ()


@dataclass(frozen=True)
class DDPRunReport:
    """One config's run across ranks.

    Attributes:
        name: the config name. ok: every rank trained. errors: ``"rank r: Type: first sentence"`` per failed rank.
        unused: parameter names DDP reported without gradient (on the first failing rank).
        ranks_agree: every rank ends with bit-identical parameters (None when a rank failed).
        local_ranks_agree: the same, for copies trained on each rank's batches without DDP.
        ms_per_step: median time of a timed step, over ranks (None when nothing was timed).
        skipped_blocks: blocks layer dropout skipped per step on rank 0 (empty when a rank failed).
        losses: rank 0's loss per step (empty when a rank failed).
    """

    name: str
    ok: bool
    errors: tuple[str, ...]
    unused: tuple[str, ...]
    ranks_agree: bool | None
    local_ranks_agree: bool | None
    ms_per_step: float | None
    skipped_blocks: tuple[tuple[str, ...], ...] = ()
    losses: tuple[float, ...] = ()

    def lines(self) -> list[str]:
        """Deterministic text for a notebook: errors and agreement, never timings or checksums."""
        if not self.ok:
            return list(self.errors) + ([f"parameters without gradient: {', '.join(self.unused)}"]
                                        if self.unused else [])
        return [f"{self.name}: trained on every rank", f"ranks agree on parameters: {self.ranks_agree}",
                f"without DDP, ranks agree on parameters: {self.local_ranks_agree}"]


def _report(name: str, outcomes: list[RankOutcome | None], errors: dict[int, str]) -> DDPRunReport:
    errors = dict(errors)
    for rank, outcome in enumerate(outcomes):
        if outcome is not None and not outcome.ok:
            errors[rank] = outcome.error
    if errors:
        lines = tuple(f"rank {rank}: {first_sentence(text)}" for rank, text in sorted(errors.items()))
        unused = next((found for _, text in sorted(errors.items()) if (found := parameters_named_in_error(text))), ())
        return DDPRunReport(name, False, lines, unused, None, None, None)
    timed = [statistics.median(o.step_ms) for o in outcomes if o.step_ms]
    return DDPRunReport(name, True, (), (), len({o.checksum for o in outcomes}) == 1,
                        len({o.local_checksum for o in outcomes}) == 1,
                        statistics.median(timed) if timed else None,
                        tuple(tuple(s) for s in outcomes[0].skipped), tuple(outcomes[0].losses))


def _run(train_fn, args: tuple, world_size: int, timeout_s: float):
    """Run ``train_fn`` through xtlab's DDP runner; return per-rank values (None on error) and errors by rank."""
    ranks = ddp_runner.run_distributed(train_fn, world_size, timeout_s=timeout_s, args=args).ranks
    return [r.value if r.ok else None for r in ranks], {r.rank: r.error for r in ranks if not r.ok}


def launch_ddp(config: DDPTrainConfig, *, world_size: int = 2, timeout_s: float = 60.0) -> DDPRunReport:
    """Train ``config`` under real DDP on ``world_size`` processes; a rank's exception comes back as text."""
    if not isinstance(config, DDPTrainConfig):
        raise TypeError(f"config must be a DDPTrainConfig, but got {type(config).__name__}: {config!r:.80}")
    values, errors = _run(train_ddp_xtransformer, (config,), world_size, timeout_s)
    return _report(config.name, values, errors)


def launch_ddp_configs(configs: tuple[DDPTrainConfig, ...], *, world_size: int = 2,
                       timeout_s: float = 60.0) -> list[DDPRunReport]:
    """Train several configs in one start of the processes (start-up costs seconds); one report per config."""
    configs = tuple(configs)
    if not configs or not all(isinstance(c, DDPTrainConfig) for c in configs):
        raise TypeError(f"configs must be a non-empty sequence of DDPTrainConfig, but got {configs!r:.80}")
    values, errors = _run(train_ddp_configs, (configs,), world_size, timeout_s)
    reports = []
    for index, config in enumerate(configs):
        per_rank = [v[index] if v is not None and index < len(v) else None for v in values]
        reports.append(_report(config.name, per_rank, errors))
    return reports
