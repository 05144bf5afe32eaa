from pathlib import Path

import numpy as np
import pytest

from xtlab.catalog import LABS, lab_table
from xtlab.labs.tour.panels import all_blocks_probability, tour_panel
from xtlab.widgets.figures import figure_to_png, new_figure

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def test_catalog_numbers_are_consecutive_and_named_after_notebooks():
    assert [lab.number for lab in LABS] == list(range(len(LABS)))
    for lab in LABS:
        assert lab.notebook.startswith(f"{lab.number:02d}_")


def test_start_here_notebook_exists():
    assert (NOTEBOOKS / LABS[0].notebook).exists()


def test_lab_table_lists_every_notebook():
    table = lab_table()
    assert all(lab.notebook in table for lab in LABS)


def test_all_blocks_probability_matches_formula():
    probs = all_blocks_probability(0.2, 3)
    np.testing.assert_allclose(probs, [0.8, 0.64, 0.512])


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5])
def test_all_blocks_probability_rejects_bad_p(p):
    with pytest.raises(ValueError, match=str(p)):
        all_blocks_probability(p, 3)


def test_tour_panel_redraws_when_a_slider_moves():
    panel = tour_panel()
    first_png, first_count = panel.image.value, panel.redraw_count
    panel.controls["p"].value = 0.5
    assert panel.redraw_count == first_count + 1
    assert panel.image.value != first_png
    assert panel.last_result[-1] == pytest.approx(0.5**12)
    assert "0.000" in panel.summary.value


def test_panel_repr_is_deterministic_text():
    assert repr(tour_panel()).splitlines()[0] == "LabPanel(p=0.1, max_blocks=12)"


def test_figure_to_png_rejects_non_figures():
    with pytest.raises(TypeError, match="str"):
        figure_to_png("not a figure")


def test_new_figure_rejects_non_positive_size():
    with pytest.raises(ValueError, match="-1"):
        new_figure(-1, 2)
    assert figure_to_png(new_figure(1, 1)).startswith(b"\x89PNG")


def test_show_figures_inline_outside_ipython_is_a_no_op():
    from xtlab.widgets.figures import show_figures_inline

    assert show_figures_inline() is False


def test_model_map_rows_come_from_the_model_and_mark_each_lab():
    from torch import nn

    from xtlab.labs.tour import course_model, model_map, plot_model_map

    model = course_model()
    rows = model_map(model)
    names = [row.name for row in rows]
    shown_modules = [name for name, module in model.named_modules()
                     if not isinstance(module, (nn.Dropout, nn.GELU, nn.ModuleList, nn.Sequential))]
    assert [name for name in names if not name.endswith(("memory_tokens", "mem_k", "mem_v"))] == shown_modules
    by_name = {row.name: row for row in rows}
    assert by_name["attn_layers.layers.0"].labs == (1,)
    assert set(by_name["token_emb"].labs) == {2, 4} and set(by_name["to_logits"].labs) == {2, 5}
    assert by_name["memory_tokens"].labs == (4,) and by_name["attn_layers.layers.0.fn.mem_k"].labs == (4,)
    assert 3 in by_name["attn_layers.layers.0.fn"].labs
    assert {number for row in rows for number in row.labs} == {1, 2, 3, 4, 5}
    assert by_name[""].depth == 0 and by_name["attn_layers.layers.0"].depth == 2
    assert len(plot_model_map(rows).axes) == 2


def test_model_map_refuses_what_is_not_a_module():
    from xtlab.labs.tour import model_map, plot_model_map

    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        model_map("a model")
    with pytest.raises(ValueError, match="at least one"):
        plot_model_map([])


def test_environment_check_names_versions_and_says_what_to_do_without_widgets():
    from xtlab.labs.tour import WIDGETS_STATIC, package_versions, widget_check

    versions = package_versions(("torch", "no-such-package-xtlab"))
    assert versions["torch"].split("+")[0].count(".") == 2 and versions["no-such-package-xtlab"] == "not installed"
    check = widget_check()
    assert repr(check) == WIDGETS_STATIC and "static image" in WIDGETS_STATIC and "Widgets render" in check.value


def test_start_here_prints_the_catalog_total_and_the_lab_areas():
    import json

    cells = json.loads((NOTEBOOKS / LABS[0].notebook).read_text())["cells"]
    text = "".join("".join(o.get("text", "")) for c in cells if c["cell_type"] == "code" for o in c["outputs"])
    assert f"total: about {sum(lab.minutes for lab in LABS)} minutes" in text
    from xtlab.labs.tour import lab_area_lines

    assert all(line in text for line in lab_area_lines())
