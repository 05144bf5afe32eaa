"""Lab 05: no orphan processes. After a launch that trains, one whose runs fail, and one stopped by its timeout,
no child process of the test process is left (psutil)."""

import time

import psutil
import pytest

from xtlab.labs.encoder_decoder_ddp.launch import run_scenarios
from xtlab.labs.encoder_decoder_ddp.notebook_runs import LAYER_DROPOUT_DEPTH, ONE_RANK_SKIPS_NOTHING
from xtlab.labs.encoder_decoder_ddp.scenarios import DDPScenario

MULTIPROCESSING_HELPERS = ("multiprocessing.resource_tracker", "multiprocessing.forkserver")
pytestmark = pytest.mark.slow  # each test starts 2 processes that import torch: seconds on a 2-core machine


def _children() -> list:
    # multiprocessing's resource tracker and forkserver are one helper each per parent, exiting with it: not ranks
    alive = []
    for child in psutil.Process().children(recursive=True):
        try:
            command = " ".join(child.cmdline())
            # ranks are Python processes; the browser tests' Chromium may fork helpers while this test runs
            helper = any(name in command for name in MULTIPROCESSING_HELPERS)
            if child.status() != psutil.STATUS_ZOMBIE and "python" in command and not helper:
                alive.append(child)
        except psutil.NoSuchProcess:
            continue
    return alive


@pytest.fixture
def no_new_children():
    before = {child.pid for child in _children()}
    yield
    left = [child for child in _children() if child.pid not in before]
    assert not left, f"processes left behind: {[(c.pid, c.name()) for c in left]}"


def test_a_launch_that_trains_and_one_whose_runs_fail_leave_no_process(no_new_children):
    runs = run_scenarios((DDPScenario("fixed"), DDPScenario("bug", encoder_keeps_logits=True),
                          DDPScenario("dies_unpickling", model_bytes=b"not a pickle")))
    assert [run.outcome for run in runs] == ["trained on every rank", "error", "error"]
    assert runs["dies_unpickling"].ranks[0].phase == "building the model"


def test_a_launch_stopped_by_its_timeout_leaves_no_process(no_new_children):
    # rank 0 waits in an all-reduce its peer never joins (for a minute), rank 1 raises and waits for rank 0 at the
    # next run's barrier (had it exited, rank 0 would see its connection close): the launch timeout stops both
    hang = DDPScenario("hang", depth=LAYER_DROPOUT_DEPTH, skips=ONE_RANK_SKIPS_NOTHING, collective_timeout_s=60)
    start = time.monotonic()
    runs = run_scenarios((hang, DDPScenario("next")), timeout_s=6)
    assert time.monotonic() - start < 20
    for name in ("hang", "next"):
        assert runs[name].outcome == "hang until the timeout"
        assert [rank.status for rank in runs[name].ranks] == ["stopped", "stopped"], runs[name]
