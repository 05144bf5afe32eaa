"""Lab 05 plots and panels, driven by setting control values (nothing here launches processes)."""

import pytest
from matplotlib.figure import Figure

from xtlab.labs.encoder_decoder_ddp.ddp_panel import ddp_panel, plot_runs
from xtlab.labs.encoder_decoder_ddp.experiments import Seq2SeqRun, wasted_by_encoder_logits
from xtlab.labs.encoder_decoder_ddp.launch import ScenarioReport, ScenarioRuns, _rank_report
from xtlab.labs.encoder_decoder_ddp.scenarios import DDPScenario, RankOutcome
from xtlab.labs.encoder_decoder_ddp.waste_panel import plot_seq2seq_run, plot_waste, waste_curve, waste_panel
from xtlab.widgets.figures import figure_to_png

ERROR = "RuntimeError: Expected to have finished reduction in the prior iteration before starting a new one."


def _runs() -> ScenarioRuns:
    trained = tuple(RankOutcome("fixed", r, True, 3, seconds=0.1, checksum="c") for r in (0, 1))
    failed = tuple(RankOutcome("bug", r, False, 1, 2, "forward", 0.01, ERROR) for r in (0, 1))
    return ScenarioRuns((
        ScenarioReport(1, 2, DDPScenario("fixed"), tuple(map(_rank_report, trained)), trained),
        ScenarioReport(2, 2, DDPScenario("bug"), tuple(map(_rank_report, failed)), failed),
    ), 3.0)


def test_plots_return_figures():
    run = Seq2SeqRun("reverse", [2.5, 1.0, 0.1], 0.0, 1.0, 1.0, 8, [1, 2], [2, 1])
    report = wasted_by_encoder_logits(1000, 64)
    runs = _runs()
    for fig in (plot_seq2seq_run(run), plot_waste(report, waste_curve(64, "float32", True)), plot_waste(report),
                plot_runs(None), plot_runs(runs), plot_runs(runs["bug"])):
        assert isinstance(fig, Figure)


def test_runs_plot_has_one_bar_per_rank_and_run_with_the_steps_finished():
    fig = plot_runs(_runs())
    ax = fig.axes[0]
    assert [bar.get_width() for bar in ax.patches] == [3, 3, 1.5, 1.5]
    assert [label.get_text() for label in ax.get_yticklabels()] == [
        "1. fixed, rank 0", "1. fixed, rank 1", "2. bug, rank 0", "2. bug, rank 1"]
    assert ax.get_xlim()[0] == 0
    assert [text.get_text() for text in fig.legends[0].get_texts()] == ["trained every step", "raised an error"]


def test_runs_are_found_by_name_and_printed_in_order():
    runs = _runs()
    assert runs.names == ["fixed", "bug"] and len(runs) == 2 and runs["bug"].number == 2
    assert repr(runs).splitlines()[0] == "run 1 of 2, fixed: trained on every rank"
    try:
        runs["missing"]
    except KeyError as err:
        assert "fixed" in str(err)
    else:
        raise AssertionError("an unknown run name must raise KeyError")


def test_waste_curve_grows_with_vocabulary_and_is_zero_when_fixed():
    curve = waste_curve(64, "float32", True)
    wasted = [b for _, b in curve]
    assert wasted == sorted(wasted) and wasted[0] > 0
    assert all(b == 0 for _, b in waste_curve(64, "float32", False))


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
    assert repr(panel).splitlines()[0] == ("LabPanel(model='encoder keeps to_logits (the bug)', "
                                           "find_unused_parameters=False, static_graph=False, debug='OFF')")
    assert panel.last_result is None and "Nothing launched" in panel.summary.value
    count = panel.redraw_count
    panel.controls["find_unused_parameters"].value = True  # auto_refresh=False: nothing runs
    assert panel.redraw_count == count and panel.launch_button in panel.children


def test_waste_panel_redraws_into_its_figure_as_a_new_figure_would_show():
    panel = waste_panel()
    first = panel.last_figure
    for name, value in [("vocab_size", 1000), ("dim", 2048), ("dtype", "bfloat16"), ("vocab_size", 128000)]:
        panel.controls[name].value = value
        assert panel.image.value == figure_to_png(plot_waste(*panel.last_result))
    assert panel.last_figure is first


def test_ddp_panel_draws_a_real_run_made_at_its_first_settings():
    error = "RuntimeError: Expected to have finished reduction in the prior iteration before starting a new one."
    outcomes = tuple(RankOutcome("encoder_keeps_logits", r, False, 1, 2, "forward", 0.01, error) for r in (0, 1))
    report = ScenarioReport(1, 1, DDPScenario("encoder_keeps_logits", encoder_keeps_logits=True),
                            tuple(_rank_report(o) for o in outcomes), outcomes)
    panel = ddp_panel(first=report)
    assert panel.last_result is report and "encoder_keeps_logits: error" in panel.summary.value
    with pytest.raises(ValueError, match="default settings"):
        ddp_panel(first=ScenarioReport(1, 1, DDPScenario("x", find_unused_parameters=True), report.ranks, outcomes))
