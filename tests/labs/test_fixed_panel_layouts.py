"""Panels whose figures use fixed places instead of a layout pass per re-draw (``new_figure(margins=...)``):
at every combination of their controls' extremes nothing reaches outside the figure and no axes' labels overlap
another's."""

import importlib
import itertools

import pytest

from xtlab.widgets.figures import layout_problems

FIXED_LAYOUT_PANELS = (
    "xl_rotary.memory_panels.empty_memories_panel",
    "xl_rotary.position_panels.positions_panel",
    "encoder_decoder_ddp.waste_panel.waste_panel",
    "weight_tying.panels.updates_panel",
    "layer_dropout.panels.layer_dropout_panel",
)
# controls that change only a number inside a centred title with room to spare: left at their values (each
# combination of a layer-dropout run trains a model)
LAYOUT_NEUTRAL = {"layer_dropout.panels.layer_dropout_panel": {"seed", "layer_dropout"}}


def _extremes(control) -> list:
    if hasattr(control, "options"):
        return [option[1] if isinstance(option, tuple) else option for option in control.options]
    if hasattr(control, "min"):
        return [control.min, control.max]
    return [False, True]


@pytest.mark.parametrize("path", FIXED_LAYOUT_PANELS)
def test_fixed_layout_fits_at_every_extreme(path):
    module, name = path.rsplit(".", 1)
    panel = getattr(importlib.import_module(f"xtlab.labs.{module}"), name)()
    assert panel.last_figure.get_layout_engine() is None, "this panel is expected to use fixed places"
    names = [name for name in panel.controls if name not in LAYOUT_NEUTRAL.get(path, set())]
    for combination in itertools.product(*(_extremes(panel.controls[n]) for n in names)):
        for control_name, value in zip(names, combination, strict=True):
            panel.controls[control_name].value = value
        assert panel.last_error is None, panel.last_error
        assert layout_problems(panel.last_figure) == [], dict(zip(names, combination, strict=True))
