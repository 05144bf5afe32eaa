"""Lab 05: the panel's button launches one real DDP run on 2 processes (gloo), and its report shows what happened."""

import pytest

from xtlab.labs.encoder_decoder_ddp.ddp_panel import ddp_panel

pytestmark = pytest.mark.slow  # the button starts 2 processes that import torch: seconds on a 2-core machine

REDUCTION_ERROR = ("RuntimeError: Expected to have finished reduction in the prior iteration before starting "
                   "a new one.")


def test_button_launches_real_ddp_and_the_bug_fails_with_the_real_error_named_by_detail():
    panel = ddp_panel()
    panel.controls["debug"].value = "DETAIL"
    panel.launch_button.click()
    report = panel.last_result
    assert report is not None and report.outcome == "error"
    assert [rank.message for rank in report.ranks] == [REDUCTION_ERROR, REDUCTION_ERROR]
    assert [(rank.step, rank.phase) for rank in report.ranks] == [(2, "forward"), (2, "forward")]
    assert report.unused == ("encoder.to_logits.weight",)
    assert "Expected to have finished reduction" in panel.summary.value
    assert "parameters without gradient: encoder.to_logits.weight" in panel.summary.value
    assert not panel.launch_button.disabled and panel.launch_button.description.startswith("Launch")
