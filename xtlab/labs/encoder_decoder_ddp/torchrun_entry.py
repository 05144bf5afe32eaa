"""Lab 05's DDP experiments under the real launcher: ``torchrun`` starts the ranks instead of the notebook's runner.

    python -m torch.distributed.run --standalone --nproc-per-node 2 \
        -m xtlab.labs.encoder_decoder_ddp.torchrun_entry EXPERIMENT

``torchrun`` is the same program; ``--standalone`` picks a free port on this machine (across machines, replace it
by ``--nnodes N --rdzv-backend c10d --rdzv-endpoint HOST:PORT``). Each rank joins the group torchrun describes in
its environment (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``), runs the same function the notebook's
runner starts on each rank (``run_scenarios_on_rank``, or the reducer exercise's ``run_reducer_cases_on_rank``), and
rank 0 gathers every rank's outcome and prints it through the same reporting code as the notebook: the lines are
the notebook's, only the durations differ. Experiments: every DDP run of the notebook, among them the failing
encoder–decoder (``encoder_keeps_logits``) and the fix (``encoder_fixed``), and the reference reducer on the
exercise's hidden cases (``reducer``; ``--answer module:function`` runs your own ``attach_reducer`` from a file).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from datetime import timedelta

import torch.distributed as dist

from xtlab.labs.encoder_decoder_ddp.launch import run_scenarios, scenario_runs
from xtlab.labs.encoder_decoder_ddp.reducer_exercise import (
    CASES,
    _shipped,
    check_attach_reducer,
    judge_reducer_runs,
    reducer_reference,
    run_reducer_cases_on_rank,
)
from xtlab.labs.encoder_decoder_ddp.scenarios import SETUP_TIMEOUT_S, DDPScenario, run_scenarios_on_rank

MODULE = __spec__.name if __spec__ is not None else __name__  # the name -m runs, whatever the entry point
REDUCER = "reducer"


def scenario_of(name: str) -> DDPScenario:
    """The notebook's run of that name (the same settings, seed and timeouts)."""
    from xtlab.labs.encoder_decoder_ddp.notebook_runs import notebook_scenarios

    scenarios = {scenario.name: scenario for scenario in notebook_scenarios()}
    if name not in scenarios:
        raise ValueError(f"no experiment named {name!r}: the experiments are {experiments()}")
    return scenarios[name]


def experiments() -> list[str]:
    """Every experiment the entry runs: the notebook's DDP runs, then the reducer."""
    from xtlab.labs.encoder_decoder_ddp.notebook_runs import notebook_scenarios

    return [scenario.name for scenario in notebook_scenarios()] + [REDUCER]


def torchrun_command(experiment: str, nproc_per_node: int = 2) -> str:
    """The shell command that runs ``experiment`` under torchrun (``python -m torch.distributed.run`` is
    ``torchrun``)."""
    if experiment not in experiments():
        raise ValueError(f"no experiment named {experiment!r}: the experiments are {experiments()}")
    return f"python -m torch.distributed.run --standalone --nproc-per-node {nproc_per_node} -m {MODULE} {experiment}"


def outcome_lines(experiment: str, result) -> list[str]:
    """What both launchers print: a scenario's report lines, or the reducer's verdict."""
    if experiment == REDUCER:
        return str(result).splitlines()
    return result[experiment].lines()


def run_with_notebook_runner(experiment: str, answer=reducer_reference) -> list[str]:
    """The same experiment through the notebook's runner (xtlab's DDP runner, 2 processes)."""
    if experiment == REDUCER:
        return outcome_lines(experiment, check_attach_reducer(answer))
    return outcome_lines(experiment, run_scenarios(scenario_of(experiment)))


def _load_answer(spec: str | None):
    if spec is None:
        return reducer_reference
    module, _, name = spec.partition(":")
    if not module or not name:
        raise SystemExit(f"--answer must be module:function, but got {spec!r}")
    return getattr(importlib.import_module(module), name)


def _run_on_this_rank(experiment: str, answer, rank: int, world_size: int):
    if experiment == REDUCER:
        shipped = _shipped(answer)
        if not isinstance(shipped, tuple):
            raise SystemExit(str(shipped))
        return run_reducer_cases_on_rank(rank, world_size, shipped, CASES)
    return run_scenarios_on_rank(rank, world_size, (scenario_of(experiment),))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m torch.distributed.run --nproc-per-node 2 -m {MODULE}",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("experiment", choices=experiments())
    parser.add_argument("--answer", help="module:function, your attach_reducer (experiment reducer only)")
    args = parser.parse_args(argv)
    answer = _load_answer(args.answer)
    dist.init_process_group("gloo", timeout=timedelta(seconds=SETUP_TIMEOUT_S))  # torchrun's env:// rendezvous
    rank, world_size = dist.get_rank(), dist.get_world_size()
    try:
        values = _run_on_this_rank(args.experiment, answer, rank, world_size)
        gathered = [None] * world_size if rank == 0 else None
        dist.gather_object(values, gathered, dst=0)
        if rank == 0:
            if args.experiment == REDUCER:
                result = judge_reducer_runs(list(gathered))
            else:
                result = scenario_runs((scenario_of(args.experiment),),
                                       [(r, v, "") for r, v in enumerate(gathered)], 0.0)
            print("\n".join(outcome_lines(args.experiment, result)), flush=True)
    finally:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
