"""The seeding panel and the report-card figure."""

import statistics
import time

import pytest
from matplotlib.figure import Figure

from xtlab.diagnostics import audit
from xtlab.labs import audit as lab


@pytest.fixture(scope="module")
def models():
    from xtlab.interop import twin_of

    x_model, _ = lab.build_x_transformers(seed=0)
    return {"x-transformers": x_model, "xtlab twin": twin_of(x_model)}


def test_torch_seed_repeats_xtlab_skips_but_not_x_transformers(models):
    x_runs = lab.seeding_runs(models["x-transformers"], "x-transformers", 0.5)
    twin_runs = lab.seeding_runs(models["xtlab twin"], "xtlab twin", 0.5)
    assert x_runs.steps_that_differ > 0 and x_runs.skipped_cells > 0
    assert twin_runs.steps_that_differ == 0 and twin_runs.skipped_cells > 0
    assert len(x_runs.blocks) == len(twin_runs.blocks) == 2 * lab.DEPTH


def test_the_panel_draws_updates_quickly_and_says_what_it_shows(models):
    panel = lab.seeding_panel(models)
    assert panel.last_error is None and isinstance(panel.last_figure, Figure)
    assert repr(panel).startswith("LabPanel(library='x-transformers', p=0.3)")
    seconds = []
    for library, p in (("xtlab twin", 0.2), ("x-transformers", 0.5), ("xtlab twin", 0.4)):
        panel.controls["library"].value, panel.controls["p"].value = library, p
        start = time.perf_counter()
        panel.refresh()
        seconds.append(time.perf_counter() - start)
        assert panel.last_error is None and f"{library}, p={p:g}" in panel.summary_text()
    assert statistics.median(seconds) < 1.0  # target 150 ms idle; generous for a shared, loaded CPU
    title = panel.last_figure._suptitle.get_text()
    assert "xtlab twin" in title and "repeat" in title


def test_the_report_card_figure_has_one_cell_per_check_and_model():
    cards = {name: audit(lab.build_tiny_lm(seed, value_head=seed == 1), lab.tiny_lm_adapter(lab.build_tiny_lm(0)),
                         ddp=False) for name, seed in (("a", 0), ("b", 1))}
    fig = lab.plot_report_cards(cards)
    ax = fig.axes[0]
    assert [label.get_text() for label in ax.get_xticklabels()] == ["a", "b"]
    assert len(ax.get_yticklabels()) == len(cards["a"].rows)
    assert "a: " in ax.get_title() and len(ax.texts) == 2 * len(cards["a"].rows)


def test_bad_panel_input_is_refused():
    with pytest.raises(TypeError, match="models"):
        lab.seeding_panel(["x"])
    with pytest.raises(ValueError, match="p must be"):
        lab.seeding_runs(lab.build_x_transformers(0)[0], "x", 1.5)
    with pytest.raises(TypeError, match="cards"):
        lab.plot_report_cards([1])
