"""Lab 05: launch DDP scenarios on real processes (xtlab's DDP runner, gloo) and turn what every rank reported into
outcomes: trained, error (which rank, which step, the first sentence of the message) or hang (a rank blocked in a
collective until its timeout), each run numbered and named by the code that ran it."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from xtlab._checks import check_int, check_number
from xtlab.diagnostics import ddp_runner
from xtlab.labs.encoder_decoder_ddp.experiments import build_seq2seq_model
from xtlab.labs.encoder_decoder_ddp.scenarios import DDPScenario, RankOutcome, run_scenarios_on_rank

STATUSES = ("trained", "error", "hung", "stopped", "died")
OUTCOMES = ("trained on every rank", "error", "hang until the timeout")
START_UP_S = 40.0  # the launch timeout's allowance for starting the ranks (each imports torch) on a busy machine

_EXCEPTION_LINE = re.compile(r"^(\w+(?:Error|Exception|Interrupt|Exit)): ", re.MULTILINE)
_UNUSED_LINE = re.compile(r"Parameters which did not receive grad for rank \d+: (.+)")
_SOURCE_PREFIX = re.compile(r"\[[^\]\s]*\.(?:cc|cpp|h):\d+\] ")  # "[.../unbound_buffer.cc:78] " in gloo's messages
_TIMED_OUT = re.compile(r"timed out|timeout", re.IGNORECASE)
TRAINING_PHASES = ("forward", "backward", "optimizer step")


def first_sentence(error_text: str) -> str:
    """``"RuntimeError: Expected ... one."`` from a traceback or ``"Type: message"`` text: the exception type and the
    first sentence of its message, without C++ source locations (the rest of PyTorch's message is advice)."""
    error_text = _SOURCE_PREFIX.sub("", error_text)
    matches = list(_EXCEPTION_LINE.finditer(error_text))
    if not matches:
        return error_text.strip().splitlines()[0] if error_text.strip() else ""
    last = matches[-1]
    message = error_text[last.end():].strip()
    sentence = re.match(r"(.+?[.!?])(?=\s|$)", message, re.DOTALL)
    text = (sentence.group(1) if sentence else message.splitlines()[0]).replace("\n", " ")
    return f"{last.group(1)}: {text}"


def full_message(error_text: str) -> str:
    """The whole ``"Type: message"`` of an error, every line of it (PyTorch's DDP error names the unused parameters
    in its later lines), without C++ source locations."""
    return _SOURCE_PREFIX.sub("", error_text).strip()


def parameters_named_in_error(error_text: str) -> tuple[str, ...]:
    """The parameter names DDP lists as having received no gradient, sorted (only at debug level INFO or DETAIL)."""
    found = _UNUSED_LINE.search(error_text)
    return tuple(sorted(name.strip() for name in found.group(1).split(","))) if found else ()


@dataclass(frozen=True)
class RankReport:
    """One rank's outcome in one run.

    Attributes:
        rank: the rank. status: ``trained``, ``error``, ``hung`` (raised by the collective timeout), ``stopped``
            (still running at the launch timeout, or stopped after a peer failed) or ``died`` (the process exited
            without a report).
        step / phase: where it raised (``None`` / ``""`` when it trained).
        seconds: from the first forward to the end or the exception (``None`` when stopped).
        message: first sentence of the error (``""`` when it trained). error: the full error text.
    """

    rank: int
    status: str
    step: int | None
    phase: str
    seconds: float | None
    message: str
    error: str

    def line(self) -> str:
        """``rank 1: error in the forward of step 2 after 0.01 s: RuntimeError: ...``"""
        if self.status == "trained":
            return f"rank {self.rank}: trained every step ({self.seconds:.2f} s)"
        if self.status in ("stopped", "died"):
            return f"rank {self.rank}: {self.status}: {self.message}"
        where = f"in the {self.phase} of step {self.step}" if self.step else f"while {self.phase}"
        what = "blocked" if self.status == "hung" else "error"
        return f"rank {self.rank}: {what} {where}, raised after {self.seconds:.2f} s: {self.message}"


def _rank_report(outcome: RankOutcome) -> RankReport:
    if outcome.ok:
        return RankReport(outcome.rank, "trained", None, "", outcome.seconds, "", "")
    # hung: a training collective timed out (the lab's short timeout, set once every rank was built and wrapped);
    # a timeout while building is a failed start, reported as an error, never as a hang
    timed_out = outcome.failed_phase in TRAINING_PHASES and _TIMED_OUT.search(outcome.error)
    status = "hung" if timed_out else "error"
    return RankReport(outcome.rank, status, outcome.failed_step, outcome.failed_phase, outcome.seconds,
                      first_sentence(outcome.error), outcome.error)


def _stopped(rank: int, error: str) -> RankReport:
    status = "died" if "died with exit code" in error else "stopped"
    return RankReport(rank, status, None, "", None, first_sentence(error) or "no report", error)


@dataclass(frozen=True)
class ScenarioReport:
    """One run: its scenario, its place in the launch, and every rank's outcome.

    Attributes:
        number / total: this run's number in its launch, and how many runs the launch made.
        scenario: what ran. ranks: one :class:`RankReport` per rank.
        outcomes: the raw per-rank outcomes (``None`` for a rank that never reported).
    """

    number: int
    total: int
    scenario: DDPScenario
    ranks: tuple[RankReport, ...]
    outcomes: tuple[RankOutcome | None, ...]

    @property
    def name(self) -> str:
        return self.scenario.name

    @property
    def outcome(self) -> str:
        """``trained on every rank``, ``hang until the timeout`` (some rank was blocked in a collective or still
        running at the launch timeout) or ``error``."""
        statuses = {rank.status for rank in self.ranks}
        if statuses == {"trained"}:
            return OUTCOMES[0]
        return OUTCOMES[2] if statuses & {"hung", "stopped"} else OUTCOMES[1]

    @property
    def ok(self) -> bool:
        return self.outcome == OUTCOMES[0]

    def ranks_with(self, status: str) -> list[int]:
        """The ranks whose status is ``status``."""
        return [rank.rank for rank in self.ranks if rank.status == status]

    @property
    def unused(self) -> tuple[str, ...]:
        """The parameters DDP's error names as without gradient, over every rank (needs debug INFO or DETAIL)."""
        return tuple(sorted({name for rank in self.ranks for name in parameters_named_in_error(rank.error)}))

    @property
    def ranks_agree(self) -> bool | None:
        """Every rank ends with bit-identical parameters (``None`` unless every rank trained)."""
        return len({o.checksum for o in self.outcomes}) == 1 if self.ok else None

    @property
    def local_ranks_agree(self) -> bool | None:
        """The same for the copies trained without DDP (``None`` unless run with ``control_without_ddp``)."""
        if not self.ok or not self.scenario.control_without_ddp:
            return None
        return len({o.local_checksum for o in self.outcomes}) == 1

    @property
    def skipped(self) -> tuple[tuple[tuple[int, ...], ...], ...]:
        """``skipped[rank][step]``: decoder blocks each rank skipped in each forward it ran."""
        return tuple(o.skipped if o is not None else () for o in self.outcomes)

    @property
    def title(self) -> str:
        return f"run {self.number} of {self.total}, {self.name}: {self.outcome}"

    def lines(self) -> list[str]:
        """The title, the settings, and one line per rank."""
        return [self.title, f"  {self.scenario.settings}"] + [f"  {rank.line()}" for rank in self.ranks]

    def __repr__(self) -> str:
        return "\n".join(self.lines())


@dataclass(frozen=True)
class ScenarioRuns:
    """Every run of one launch, by name and in order; ``seconds`` is the launch's wall time (start-up included)."""

    reports: tuple[ScenarioReport, ...]
    seconds: float

    def __getitem__(self, name: str) -> ScenarioReport:
        for report in self.reports:
            if report.name == name:
                return report
        raise KeyError(f"no run named {name!r}: the runs are {[r.name for r in self.reports]}")

    def __iter__(self) -> Iterator[ScenarioReport]:
        return iter(self.reports)

    def __len__(self) -> int:
        return len(self.reports)

    @property
    def names(self) -> list[str]:
        return [report.name for report in self.reports]

    def __repr__(self) -> str:
        return "\n".join(line for report in self.reports for line in report.lines())


def decoder_blocks(depth: int) -> int:
    """How many residual blocks the lab's decoder has at ``depth`` (attn, cross, ff per layer), counted on a model."""
    return len(build_seq2seq_model(depth=depth).decoder.attn_layers.layers)


def _check_scenarios(scenarios, world_size: int) -> tuple[DDPScenario, ...]:
    if isinstance(scenarios, DDPScenario):
        scenarios = (scenarios,)
    if not isinstance(scenarios, Sequence) or not scenarios or not all(isinstance(s, DDPScenario) for s in scenarios):
        raise TypeError(f"scenarios must be a DDPScenario or a non-empty sequence of them, but got {scenarios!r:.80}")
    names = [s.name for s in scenarios]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"scenario names must be unique, but {duplicates} appear more than once")
    for scenario in scenarios:
        if scenario.skips is None:
            continue
        if len(scenario.skips) != world_size:
            raise ValueError(f"scenario {scenario.name!r}: skips must hold one schedule per rank ({world_size}), "
                             f"but holds {len(scenario.skips)}")
        blocks = decoder_blocks(scenario.depth)
        wrong = sorted({b for per_step in scenario.skips for step in per_step for b in step if b >= blocks})
        if wrong:
            raise ValueError(f"scenario {scenario.name!r}: skips name blocks {wrong}, but the decoder at depth "
                             f"{scenario.depth} has blocks 0..{blocks - 1}")
    return tuple(scenarios)


def run_scenarios(scenarios, *, world_size: int = 2, timeout_s: float | None = None) -> ScenarioRuns:
    """Run ``scenarios`` one after another in one launch of ``world_size`` real processes (gloo on the CPU).

    Args:
        scenarios: a :class:`DDPScenario` or a sequence of them (unique names).
        world_size: processes (2 to 4).
        timeout_s: the whole launch's limit; past it, ranks still running are stopped and every run they had
            not finished is reported ``stopped``. Default: a start-up allowance plus, per run, its collective
            timeout and a few seconds.

    Returns:
        :class:`ScenarioRuns`, one :class:`ScenarioReport` per scenario.
    """
    check_int("world_size", world_size, minimum=2, maximum=4)
    scenarios = _check_scenarios(scenarios, world_size)
    if timeout_s is None:
        timeout_s = START_UP_S + sum(s.collective_timeout_s + 3.0 for s in scenarios)
    check_number("timeout_s", timeout_s, minimum=1.0)
    run = ddp_runner.run_distributed(run_scenarios_on_rank, world_size, args=(scenarios,), timeout_s=timeout_s,
                                     backend="gloo")
    per_rank = [(result.rank, result.value if result.ok else None, result.error) for result in run.ranks]
    return scenario_runs(scenarios, per_rank, run.seconds)


def scenario_runs(scenarios: Sequence[DDPScenario], per_rank: Sequence[tuple[int, list | None, str]],
                  seconds: float) -> ScenarioRuns:
    """The reports of one launch from what each rank's :func:`run_scenarios_on_rank` returned: ``per_rank`` holds
    ``(rank, outcomes or None, error)``; whichever launcher started the ranks (xtlab's DDP runner, torchrun)."""
    reports = []
    for index, scenario in enumerate(scenarios):
        ranks, outcomes = [], []
        for rank, values, error in per_rank:
            outcome = values[index] if values is not None and index < len(values) else None
            outcomes.append(outcome)
            ranks.append(_rank_report(outcome) if outcome is not None else _stopped(rank, error))
        reports.append(ScenarioReport(index + 1, len(scenarios), scenario, tuple(ranks), tuple(outcomes)))
    return ScenarioRuns(tuple(reports), seconds)
