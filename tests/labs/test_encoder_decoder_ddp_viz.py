"""Lab 05 plots and panels, driven by setting control values."""

from matplotlib.figure import Figure

from xtlab.labs.encoder_decoder_ddp.experiments import Seq2SeqRun, wasted_by_encoder_logits
from xtlab.labs.encoder_decoder_ddp.launch import DDPRunReport
from xtlab.labs.encoder_decoder_ddp.panels import (
    ddp_panel,
    plot_ddp_report,
    plot_seq2seq_run,
    plot_waste,
    waste_curve,
    waste_panel,
)

FAILED = DDPRunReport("bug", False, ("rank 0: RuntimeError: Expected x.",), ("encoder.to_logits.weight",),
                      None, None, None)
TRAINED = DDPRunReport("fixed", True, (), (), True, False, 3.0, ((),) * 3, (2.5, 2.4, 2.3))


def test_plots_return_figures():
    run = Seq2SeqRun("reverse", [2.5, 1.0, 0.1], 0.0, 1.0, 1.0, 8, [1, 2], [2, 1])
    report = wasted_by_encoder_logits(1000, 64)
    for fig in (plot_seq2seq_run(run), plot_waste(report, waste_curve(64, "float32", True)), plot_waste(report),
                plot_ddp_report(None), plot_ddp_report(FAILED), plot_ddp_report(TRAINED)):
        assert isinstance(fig, Figure)


def test_waste_curve_grows_with_vocabulary_and_is_zero_when_fixed():
    curve = waste_curve(64, "float32", True)
    wasted = [b for _, b in curve]
    assert wasted == sorted(wasted) and wasted[0] > 0
    assert all(b == 0 for _, b in waste_curve(64, "float32", False))


def test_report_lines_are_deterministic_text():
    assert FAILED.lines() == ["rank 0: RuntimeError: Expected x.",
                              "parameters without gradient: encoder.to_logits.weight"]
    assert TRAINED.lines() == ["fixed: trained on every rank", "ranks agree on parameters: True",
                               "without DDP, ranks agree on parameters: False"]


def test_waste_panel_reacts_to_each_control():
    panel = waste_panel()
    assert repr(panel).splitlines()[0] == (
        "LabPanel(encoder_keeps_logits=True, vocab_size=32000, dim=512, dtype='float32')")
    report, _ = panel.last_result
    assert report.wasted_params == 32000 * 512 and "encoder.to_logits.weight" in panel.summary.value
    png = panel.image.value
    panel.controls["vocab_size"].value = 64000
    assert panel.last_result[0].wasted_params == 64000 * 512 and panel.image.value != png
    panel.controls["dtype"].value = "bfloat16"
    assert panel.last_result[0].wasted_bytes == 64000 * 512 * 2
    assert "62.5 MiB in bfloat16" in panel.summary.value
    panel.controls["encoder_keeps_logits"].value = False
    assert panel.last_result[0].wasted_params == 0 and "no</b> parameter" in panel.summary.value


def test_ddp_panel_waits_for_the_button():
    panel = ddp_panel()
    assert repr(panel).splitlines()[0] == ("LabPanel(encoder_keeps_logits=True, find_unused_parameters=False, "
                           "dec_layer_dropout=0.0)")
    assert panel.last_result is None and "Nothing launched" in panel.summary.value
    count = panel.redraw_count
    panel.controls["encoder_keeps_logits"].value = False  # auto_refresh=False: nothing runs
    assert panel.redraw_count == count and panel.launch_button in panel.children
