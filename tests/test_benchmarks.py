"""The benchmark harness on tiny sizes, so `make bench` cannot silently rot."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import ipywidgets as widgets
import nbformat
import pytest
import torch

BENCHMARK_DIR = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture(scope="module")
def bench():
    """The benchmark scripts as modules (they import their sibling ``harness`` as a script would)."""
    sys.path.insert(0, str(BENCHMARK_DIR))
    try:
        yield {name: importlib.import_module(name) for name in
               ("harness", "core_throughput", "core_profile", "widgets_speed", "redraw_backends", "import_time",
                "notebooks_speed", "run_all")}
    finally:
        sys.path.remove(str(BENCHMARK_DIR))


def test_statistics_and_table(bench):
    harness = bench["harness"]
    assert harness.median([3.0, 1.0, 2.0]) == 2.0
    assert harness.percentile([1.0, 2.0, 3.0, 4.0, 5.0], 95) == pytest.approx(4.8)
    assert harness.percentile([7.0], 95) == 7.0
    with pytest.raises(ValueError, match="empty"):
        harness.median([])
    with pytest.raises(ValueError, match="q must be in"):
        harness.percentile([1.0], 101)
    table = harness.markdown_table(["a", "b"], [[1, 2]])
    assert table.splitlines() == ["| a | b |", "|---|---|", "| 1 | 2 |"]
    with pytest.raises(ValueError, match="2 cells"):
        harness.markdown_table(["a", "b"], [[1]])
    info = harness.machine_info()
    assert {"date", "machine", "torch", "x-transformers"} <= set(info)
    assert "### T" in harness.report("T", info, table, ["note"])


def test_time_interleaved_alternates_and_skips_warmup(bench):
    calls = []
    times = bench["harness"].time_interleaved({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")},
                                              repeats=2, warmup=1)
    assert calls == ["a", "b"] * 3
    assert len(times["a"]["wall"]) == len(times["b"]["cpu"]) == 2
    with pytest.raises(ValueError, match="repeats"):
        bench["harness"].time_interleaved({"a": lambda: None}, repeats=0)


def test_peak_rss_delta_sees_a_large_allocation(bench):
    def allocate():
        block = torch.ones(64 * 2**20 // 4)  # 64 MiB, touched
        return float(block[-1])

    assert bench["harness"].peak_rss_delta(allocate) > 32 * 2**20


@pytest.mark.parametrize("xl", [False, True])
def test_core_case_runs_with_equal_parameter_counts(bench, xl):
    core = bench["core_throughput"]
    case = core.Case("tiny", dim=32, depth=1, heads=2, seq_len=16, batch=2, vocab=64,
                     max_mem_len=8 if xl else 0, segments=2 if xl else 1, layer_dropout=0.5 if xl else 0.0)
    result = core.run_case(case, torch.device("cpu"), repeats=1, warmup=0)
    assert set(result) == set(core.LIBRARIES)
    assert len({r["params"] for r in result.values()}) == 1
    assert all(r["tokens_per_s"] > 0 and r["peak_mib"] >= 0 for r in result.values())
    assert "tiny" in core.results_table([(case, result)])


def test_core_profile_splits_shared_kernels_from_the_rest(bench):
    core, profile = bench["core_throughput"], bench["core_profile"]
    case = core.Case("tiny", dim=32, depth=1, heads=2, seq_len=16, batch=2, vocab=64)
    times = {library: profile.op_times(library, case, steps=1, warmup=0)
             for library in ("xtlab", "x-transformers flash")}
    assert all("aten::mm" in ops for ops in times.values())
    table, totals = profile.compare(times)
    for total in totals.values():
        assert 0 < total["shared"] < total["total"]
        assert total["rest"] == pytest.approx(total["total"] - total["shared"])
    assert "**shared kernels**" in table and "`aten::mm`" in table


def test_step_flops_equal_a_hand_count(bench):
    core = bench["core_throughput"]
    case = core.Case("tiny", dim=32, depth=1, heads=2, seq_len=16, batch=2, vocab=64)
    model = core.build_model("xtlab", case)
    # by hand: norms 3 x 32, to_qkv 384 x 32, to_out 32 x 128, feed-forward 128 x 32 + 128 and 32 x 128 + 32,
    # to_logits 64 x 32 (the token embedding is a lookup, not a matmul); 2 x 16 = 32 tokens
    non_embedding = 3 * 32 + 384 * 32 + 32 * 128 + (128 * 32 + 128) + (32 * 128 + 32) + 64 * 32
    assert non_embedding == 26_880
    dense = 6 * non_embedding * 32
    attention = 6 * 1 * 2 * 16 * 16 * (2 * 64)  # depth x batch x queries x keys x heads * dim_head, causal half
    assert core.step_flops(model, case) == dense + attention == 5_554_176


def test_peak_table_finds_the_gpu_by_name(bench):
    core = bench["core_throughput"]
    assert core.dense_bf16_peak("NVIDIA H200") == ("H200", 989.0)
    assert core.dense_bf16_peak("NVIDIA H100 PCIe") == ("H100 PCIe", 756.0)
    assert core.dense_bf16_peak("NVIDIA H100 80GB HBM3") == ("H100", 989.0)
    assert core.dense_bf16_peak("Some other card") is None


def test_parameter_mismatch_is_refused(bench):
    with pytest.raises(ValueError, match="configurations differ"):
        bench["core_throughput"].check_parameter_counts({"xtlab": 100, "x-transformers": 120})


def test_control_values_change_every_time(bench):
    widgets_speed = bench["widgets_speed"]
    slider = widgets.IntSlider(value=0, min=0, max=8)
    values = widgets_speed.control_values(slider, 6)
    assert len(values) == 6 and values[0] != 0
    assert all(a != b for a, b in zip(values, values[1:], strict=False))
    assert widgets_speed.control_values(widgets.Dropdown(options=["x", "y"], value="x"), 3) == ["y", "x", "y"]
    assert widgets_speed.control_values(widgets.Checkbox(value=True), 2) == [False, True]
    assert widgets_speed.control_values(widgets.Dropdown(options=["only"]), 3) == []


def test_widget_timing_on_the_tour_panel(bench):
    widgets_speed = bench["widgets_speed"]
    from xtlab.labs.tour.panels import tour_panel

    timings = widgets_speed.run_panels({"tour.tour_panel": tour_panel}, times=2)
    assert [t.control for t in timings] == ["p", "max_blocks"]
    assert all(len(t.seconds) == 2 and t.failures == 0 for t in timings)
    assert all(len(t.stages["png"]) == 2 for t in timings)
    assert "tour.tour_panel" in widgets_speed.results_table(timings)


def test_redraw_backends_time_both_renderers_on_the_same_figures(bench):
    redraw_backends = bench["redraw_backends"]
    from xtlab.labs.tour.panels import tour_panel

    timing = redraw_backends.time_panel("tour.tour_panel", tour_panel, times=1)
    assert len(timing.png_s) == len(timing.ipympl_s) == 2  # one change of each of its two controls
    assert all(size > 0 for size in timing.png_bytes) and all(size > 0 for size in timing.ipympl_bytes)
    assert "tour.tour_panel" in redraw_backends.results_table([timing])


def test_ipympl_redraw_leaves_the_figure_on_its_own_canvas(bench):
    redraw_backends = bench["redraw_backends"]
    from xtlab.labs.tour.panels import tour_panel
    from xtlab.widgets.figures import figure_to_png

    fig = tour_panel().last_figure
    before = figure_to_png(fig)
    canvas = fig.canvas
    assert redraw_backends.IpymplRedraw(fig).redraw() > 0
    assert fig.canvas is canvas and figure_to_png(fig) == before


def test_import_time_parser_keeps_what_comes_after_torch(bench):
    stderr = "\n".join([
        "import time: self [us] | cumulative | imported package",
        "import time:       100 |     900000 | torch",
        "import time:       200 |      30000 |   xtlab.model",
        "import time:       300 |      40000 | xtlab",
    ])
    assert bench["import_time"].parse_importtime(stderr) == [("xtlab.model", 0.03)]


def test_notebook_cell_timing_from_metadata(bench):
    cell = nbformat.v4.new_code_cell("x = 1\nprint(x)")
    cell.metadata["execution"] = {"iopub.execute_input": "2026-01-01T00:00:00.000Z",
                                  "shell.execute_reply": "2026-01-01T00:00:01.500Z"}
    nb = nbformat.v4.new_notebook(cells=[cell, nbformat.v4.new_markdown_cell("prose")])
    assert bench["notebooks_speed"].cell_seconds(nb) == [(0, 1.5, "x = 1")]


def test_run_all_refuses_unknown_benchmarks(bench):
    with pytest.raises(SystemExit, match="unknown"):
        bench["run_all"].main(["--only", "nope"])


def test_widget_target_needs_enough_changes_and_fast_medians(bench):
    widgets_speed = bench["widgets_speed"]
    timing = widgets_speed.ControlTiming

    fast = [timing("p", "a", seconds=[0.05] * 12), timing("p", "b", seconds=[0.06] * 10)]
    assert widgets_speed.panels_meet_target(fast)
    assert not widgets_speed.panels_meet_target([timing("p", "a", seconds=[0.05] * 5)])  # too few changes
    assert not widgets_speed.panels_meet_target([timing("p", "a", seconds=[0.2] * 25)])  # median too slow
    assert not widgets_speed.panels_meet_target([timing("p", "a", seconds=[0.05] * 25, failures=1)])
    table = widgets_speed.results_table(fast + [timing("q", "a", seconds=[0.4] * 20)])
    assert "| p | 2 | 22 | 50 | 60 | 60 | - / - / - | 0 | pass |" in table and "| q | 1 | 20 | 400 |" in table


def test_compiled_run_sits_beside_eager_and_flash(bench):
    """The compile option end to end on a tiny size (backend aot_eager: inductor takes ~30 s to compile here)."""
    core = bench["core_throughput"]
    case = core.Case("tiny", dim=32, depth=1, heads=2, seq_len=16, batch=2, vocab=64)
    result = core.run_case(case, torch.device("cpu"), repeats=1, warmup=1, libraries=core.COMPILED_RUN,
                           compile_backend="aot_eager")
    assert len({r["params"] for r in result.values()}) == 1
    assert result[core.COMPILED]["tflops"] > 0
    table = core.compiled_table(case, result)
    assert "compiled / eager" in table and "tiny" in table
    with pytest.raises(ValueError, match="warmup >= 1"):
        core.run_case(case, torch.device("cpu"), repeats=1, warmup=0, libraries=core.COMPILED_RUN)


def test_peak_share_names_each_run_and_the_goal(bench):
    core = bench["core_throughput"]
    case = core.Case("tiny", dim=32, depth=1, heads=2, seq_len=16, batch=2, vocab=64)
    [note] = core.peak_share_notes("NVIDIA H100 80GB HBM3", case, {"xtlab": 197.8, "xtlab compiled": 544.0})
    assert "xtlab 20.0%" in note and "xtlab compiled 55.0%" in note and "meets target" in note
    [note] = core.peak_share_notes("NVIDIA H100 80GB HBM3", case, {"xtlab": 197.8})
    assert "MISSES target" in note
    [note] = core.peak_share_notes("Some other card", case, {"xtlab": 1.0})
    assert "no dense bf16 peak" in note


def test_a_failing_compiler_is_reported_not_raised(bench):
    core = bench["core_throughput"]
    case = core.Case("tiny", dim=32, depth=1, heads=2, seq_len=16, batch=2, vocab=64)
    result, failure = core.compiled_run(case, torch.device("cpu"), repeats=1, warmup=1, backend="no-such-backend")
    assert result is None and "no-such-backend" in failure
