"""Lab 05 real DDP runs (2 processes, gloo): each test starts processes, so there are only two."""

import psutil
import pytest

from xtlab.labs.encoder_decoder_ddp.ddp_training import DDPTrainConfig
from xtlab.labs.encoder_decoder_ddp.launch import launch_ddp, launch_ddp_configs
from xtlab.labs.encoder_decoder_ddp.panels import ddp_panel

pytestmark = pytest.mark.slow  # each test starts 2 processes that import torch: seconds on a 2-core machine

REDUCTION_ERROR = ("RuntimeError: Expected to have finished reduction in the prior iteration before starting "
                   "a new one.")


def _children() -> list:
    # multiprocessing's resource tracker is one helper per parent that exits with it: not a rank
    return [p for p in psutil.Process().children(recursive=True)
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE
            and "resource_tracker" not in " ".join(p.cmdline())]


def test_button_launches_real_ddp_and_the_bug_fails_with_the_real_error():
    before = {p.pid for p in _children()}
    panel = ddp_panel()
    panel.launch_button.click()
    report = panel.last_result
    assert not report.ok
    assert report.errors == (f"rank 0: {REDUCTION_ERROR}", f"rank 1: {REDUCTION_ERROR}")
    assert report.unused == ("encoder.to_logits.weight",)
    assert "Expected to have finished reduction" in panel.summary.value
    assert not panel.launch_button.disabled and panel.launch_button.description.startswith("Launch")
    assert {p.pid for p in _children()} <= before  # every rank was joined or killed


def test_notebook_claims_fix_escape_hatch_and_layer_dropout():
    fixed, escape, dropout = launch_ddp_configs((
        DDPTrainConfig("fixed", steps=3, timed_steps=20),
        DDPTrainConfig("bug + find_unused_parameters", encoder_keeps_logits=True, find_unused_parameters=True,
                       steps=3, timed_steps=20),
        DDPTrainConfig("layer dropout", dec_layer_dropout=0.25, steps=6),
    ))
    for report in (fixed, escape):
        assert report.ok and report.ranks_agree is True and report.local_ranks_agree is False
        assert report.ms_per_step > 0 and len(report.losses) == 23
    assert dropout.errors == (f"rank 0: {REDUCTION_ERROR}", f"rank 1: {REDUCTION_ERROR}")
    assert dropout.unused and all(name.startswith("decoder.attn_layers.layers.2.") for name in dropout.unused)


@pytest.mark.parametrize("bad", [None, {"name": "fixed"}])
def test_launch_rejects_non_configs(bad):
    with pytest.raises(TypeError, match="DDPTrainConfig"):
        launch_ddp(bad)
    with pytest.raises(TypeError, match="DDPTrainConfig"):
        launch_ddp_configs([bad])
