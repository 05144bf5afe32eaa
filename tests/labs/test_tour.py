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
