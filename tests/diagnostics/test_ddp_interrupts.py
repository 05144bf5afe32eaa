"""^C, any number of times, at any moment: run_distributed leaves no process behind (ranks, their children).

Each trial starts a Python process that runs two ranks which start a grandchild each and then hang, as a
notebook would, in its own session (a terminal's foreground group), and sends SIGINT to that whole group 1, 2 or
5 times: in 30% of trials the first press lands anywhere in start-up, else while the ranks run; the later presses
follow within 0.02-0.3 s, to land in the clean-up the first one started.
Every process of the trial carries a token in its environment; after the trial no process with the token may
be alive. 4 trials, seeded, in the suite; ``XTLAB_CTRL_C_TRIALS=20`` runs the 20 of the measurement in the commit
that fixed the runner (the previous runner left processes in 2 of those 20 trials).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.slow  # real processes importing torch: seconds each on a 2-core machine

TRIALS = int(os.environ.get("XTLAB_CTRL_C_TRIALS", "4"))
SEED = 39
ROOT = Path(__file__).resolve().parents[2]
TOKEN_NAME = "XTLAB_CTRL_C_TRIAL"
SCRIPT = """
import sys
from xtlab.diagnostics.ddp_runner import run_distributed
from tests.diagnostics.ddp_train_functions import start_grandchild_then
print("started", flush=True)
try:
    run_distributed(start_grandchild_then, 2, args=(sys.argv[1], "hang"), timeout_s=60)
except KeyboardInterrupt:
    print("interrupted", flush=True)
"""


def carrying(token: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter():
        try:
            if process.environ().get(TOKEN_NAME) == token and process.status() != psutil.STATUS_ZOMBIE:
                found.append(process)
        except psutil.Error:
            continue
    return found


def trial(rng: random.Random, folder: Path) -> tuple[int, int, list[str]]:
    """(presses, survivors, survivors' command lines) of one trial."""
    token = uuid.uuid4().hex
    env = {**os.environ, TOKEN_NAME: token, "PYTHONPATH": str(ROOT)}
    runner = subprocess.Popen([sys.executable, "-c", SCRIPT, str(folder)], cwd=ROOT, env=env,
                              start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    presses = rng.choice([1, 2, 5])
    start = time.monotonic()
    if rng.random() < 0.3:  # start-up: anywhere from interpreter start-up to the ranks' start
        first = start + rng.uniform(0.5, 8.0)
    else:  # run and clean-up: once both ranks are running (their grandchildren's pid files are written)
        while len(list(folder.glob("grandchild-*.pid"))) < 2 and runner.poll() is None:
            assert time.monotonic() - start < 120, "the ranks never started"
            time.sleep(0.02)
        first = time.monotonic() + rng.uniform(0.0, 0.5)
    # the later presses close together, to land in the clean-up the first one started
    moments = [first]
    moments += [moments[-1] + rng.uniform(0.02, 0.3) for _ in range(presses - 1)]
    for moment in moments:
        time.sleep(max(0.0, moment - time.monotonic()))
        try:
            os.killpg(runner.pid, signal.SIGINT)
        except ProcessLookupError:
            break
    try:
        runner.wait(timeout=90)
    except subprocess.TimeoutExpired:
        runner.kill()
        runner.wait()
    deadline = time.monotonic() + 10.0  # multiprocessing's helpers (forkserver, resource tracker) exit on EOF
    left = carrying(token)
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = carrying(token)
    lines = []
    for process in left:
        try:
            lines.append(" ".join(process.cmdline())[:160])
            process.kill()
        except psutil.Error:
            pass
    return presses, len(left), lines


def test_any_number_of_ctrl_c_at_any_moment_leaves_no_process(tmp_path):
    rng = random.Random(SEED)
    results = []
    for number in range(TRIALS):
        folder = tmp_path / f"trial-{number}"
        folder.mkdir()
        results.append(trial(rng, folder))
    survivors = [(presses, left, lines) for presses, left, lines in results if left]
    print(f"{TRIALS} trials, presses {[presses for presses, _, _ in results]}, "
          f"survivors {sum(left for _, left, _ in results)}")
    assert survivors == []
