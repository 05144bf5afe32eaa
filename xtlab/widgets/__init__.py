"""The widget machinery every lab shares: the control panel, figure helpers, predict-then-reveal, show-source.

Only this package and ``xtlab.labs`` import ipywidgets or matplotlib.
"""

from xtlab.widgets.figures import show_figures_inline

show_figures_inline()  # in a notebook, a Figure returned by a cell is shown as an image

from xtlab.widgets.panel import LabPanel  # noqa: E402
from xtlab.widgets.predict import Prediction, Reveal, forget_predictions, predict  # noqa: E402
from xtlab.widgets.show_source import Source, show_source  # noqa: E402
from xtlab.widgets.verdict_form import VerdictForm, predict_verdicts  # noqa: E402

__all__ = ["LabPanel", "Prediction", "Reveal", "Source", "VerdictForm", "forget_predictions", "predict",
           "predict_verdicts", "show_source",
           "show_figures_inline"]
