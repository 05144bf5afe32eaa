"""Lab 04: AdamW timing, weight decay on a gain, the grouping view, the panels and the benchmark table."""

import numpy as np
import pytest
from matplotlib.figure import Figure

from xtlab.labs.optimizer_groups.benchmark import benchmark, markdown
from xtlab.labs.optimizer_groups.decay import STORAGES, gain_decay_adam_l2, gain_decay_adamw, gain_decay_closed_form
from xtlab.labs.optimizer_groups.grouping_view import grouping_view
from xtlab.labs.optimizer_groups.models import MODELS, build_model, xtlab_decoder
from xtlab.labs.optimizer_groups.panels import (
    decay_panel,
    grouping_panel,
    plot_gain_decay,
    plot_recipe_runs,
    plot_step_times,
)
from xtlab.labs.optimizer_groups.recipe import run_article_recipe
from xtlab.labs.optimizer_groups.timing import count_step_operations, time_adamw_steps


def test_timing_times_every_implementation():
    # which one wins is a measurement (the notebook's stored run, the benchmark), not something a test can assert
    timing = time_adamw_steps(xtlab_decoder(), "cpu", rounds=20)
    assert set(timing.seconds) == {"for-loop", "foreach", "fused"} and timing.unavailable == {}
    assert all(len(v) == 20 and min(v) > 0 for v in timing.seconds.values())
    assert timing.fastest in timing.seconds
    assert timing.speedup("fused", "fused") == 1.0


def test_timing_rejects_bad_settings():
    with pytest.raises(ValueError, match="rounds"):
        time_adamw_steps(xtlab_decoder(), "cpu", rounds=0)
    with pytest.raises(TypeError, match="model"):
        time_adamw_steps("model", "cpu")


def test_benchmark_table_has_one_row_per_size():
    table = markdown(benchmark("cpu", rounds=2, sizes=((32, 1), (64, 1))))
    assert table.count("\n") == 3 and "| cpu | 64 x 1 |" in table and "fused vs foreach" in table


def test_decay_alone_follows_the_closed_form():
    measured = gain_decay_adamw(1.5, lr=1e-2, weight_decay=0.3, steps=200)
    closed = gain_decay_closed_form(1.5, lr=1e-2, weight_decay=0.3, steps=200)
    for storage in STORAGES:
        np.testing.assert_allclose(measured.gains[storage], closed.gains[storage], atol=1e-5)
    assert closed.final(STORAGES[0]) == pytest.approx(1.5 * 0.997**200)
    assert closed.final(STORAGES[1]) == pytest.approx(1 + 0.5 * 0.997**200)
    assert gain_decay_adamw(1.5, steps=5, grad="none").final(STORAGES[0]) == 1.5


@pytest.mark.parametrize("kwargs, match", [({"lr": 10.0, "weight_decay": 0.5}, "lr \\* weight_decay"),
                                           ({"steps": 0}, "steps"), ({"grad": "zero"}, "'zero'")])
def test_decay_rejects_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        gain_decay_adamw(**kwargs)


def test_grouping_view_counts_misplaced_parameters():
    assert [r.name for r in grouping_view("xtlab decoder", "lab rule").wrong] == []
    assert {r.category for r in grouping_view("xtlab decoder", "by ndim").wrong} == {
        "memory tokens", "embedding", "memory key/values", "gain stored as offset from 1"}
    assert grouping_view("torch nn.Transformer", "lab rule").wrong == []  # in_proj_bias counts as a bias
    assert {r.name for r in grouping_view("x-transformers, direct gains", "article recipe").wrong} == {
        "attn_layers.layers.0.0.0.gamma", "attn_layers.layers.1.0.0.gamma", "attn_layers.final_norm.gamma"}
    with pytest.raises(ValueError, match="'by size'"):
        grouping_view("xtlab decoder", "by size")


def test_operation_counts_do_not_grow_with_tensors_for_fused_and_foreach():
    small, large = count_step_operations(xtlab_decoder()), count_step_operations(xtlab_decoder(dim=64, depth=3))
    assert small.fused_kernels == {"for-loop": 0, "foreach": 0, "fused": 1}
    assert small.counts["fused"] == large.counts["fused"] and small.counts["foreach"] == large.counts["foreach"]
    assert large.counts["for-loop"] > small.counts["for-loop"] > 5 * small.counts["foreach"]


def test_adam_l2_moves_a_gain_by_about_lr_per_step_whatever_the_decay():
    strong, weak = gain_decay_adam_l2(1.5, 1e-2, 0.3, 100), gain_decay_adam_l2(1.5, 1e-2, 0.03, 100)
    np.testing.assert_allclose(strong, weak, atol=1e-4)
    assert strong[1] == pytest.approx(1.49, abs=1e-4)


def test_plots_return_figures():
    runs = [run_article_recipe(name, build_model(name)) for name in MODELS]
    assert isinstance(plot_recipe_runs(runs), Figure)
    assert isinstance(plot_step_times({"lab": time_adamw_steps(xtlab_decoder(), "cpu", rounds=2)}), Figure)
    assert isinstance(plot_gain_decay(gain_decay_closed_form()), Figure)


def test_grouping_panel_follows_its_controls():
    panel = grouping_panel()
    assert "0 misplaced of 15" in panel.summary.value
    image = panel.image.value
    panel.controls["grouping"].value = "by ndim"
    assert len(panel.last_result.wrong) == 8 and panel.image.value != image
    panel.controls["model_name"].value = "tied by assignment"
    assert panel.last_result.model_name == "tied by assignment"


def test_decay_panel_follows_its_controls():
    panel = decay_panel()
    assert panel.last_result.final(STORAGES[1]) == pytest.approx(1 + 0.5 * 0.997**1000)
    panel.controls["weight_decay"].value = 0.0
    assert panel.last_result.final(STORAGES[0]) == 1.5 and panel.last_error is None
