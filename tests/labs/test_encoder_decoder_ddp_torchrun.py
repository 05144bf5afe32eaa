"""Lab 05 under the real launcher: each DDP experiment run by torchrun prints what the notebook's runner prints
(durations masked, as nbval masks them)."""

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from xtlab.labs.encoder_decoder_ddp import torchrun_entry
from xtlab.labs.encoder_decoder_ddp.torchrun_entry import experiments, run_with_notebook_runner, torchrun_command

ROOT = Path(__file__).resolve().parents[2]
DURATION = re.compile(r"\d+(\.\d+)? ?(ms|s|µs|us)\b")  # notebooks/nbval_sanitize.cfg [duration]


def masked(lines) -> list[str]:
    return [DURATION.sub("DURATION", line) for line in lines]


def test_the_command_names_the_module_and_refuses_an_unknown_experiment():
    command = torchrun_command("encoder_keeps_logits")
    assert command == ("python -m torch.distributed.run --standalone --nproc-per-node 2 -m "
                       "xtlab.labs.encoder_decoder_ddp.torchrun_entry encoder_keeps_logits")
    assert torchrun_entry.MODULE == torchrun_entry.__name__
    assert {"encoder_keeps_logits", "encoder_fixed", "reducer"} <= set(experiments())
    with pytest.raises(ValueError, match="no experiment named 'nope'"):
        torchrun_command("nope")


@pytest.mark.slow  # each torchrun starts 2 processes that import torch and xtlab: 5-13 s on 2 loaded cores
@pytest.mark.parametrize("experiment", ["encoder_keeps_logits", "encoder_fixed", "reducer"])
def test_torchrun_prints_what_the_notebook_runner_prints(experiment):
    argv = [sys.executable, *shlex.split(torchrun_command(experiment))[1:]]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    printed = [line for line in done.stdout.splitlines() if line.strip()]
    assert masked(printed) == masked(run_with_notebook_runner(experiment))
    assert printed[0].endswith({"encoder_keeps_logits": ": error", "encoder_fixed": ": trained on every rank",
                                "reducer": ""}[experiment]) and printed
    if experiment == "reducer":
        assert printed[0].startswith("PASS: ")
