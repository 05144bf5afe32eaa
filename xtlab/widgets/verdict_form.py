"""The learner's verdicts on an article's claims, as a form: a dropdown per claim and a commit button.

The commitment itself (what counts as a verdict, what it unlocks) is ``xtlab.course.audit.VerdictPrediction``;
this module only draws it.
"""

from __future__ import annotations

from collections.abc import Sequence

import ipywidgets as widgets
from IPython.display import display

from xtlab.course.audit import VERDICTS, VerdictPrediction


class VerdictForm(VerdictPrediction):
    """A :class:`VerdictPrediction` shown as its question and a form (or committed in code)."""

    def widget(self) -> widgets.VBox:
        """A dropdown per claim and a commit button; a committed form shows its verdicts, disabled."""
        done = self.committed or {}
        boxes = {n: widgets.Dropdown(options=["?", *VERDICTS], value=done.get(n, "?"), description=f"claim {n}",
                                     disabled=bool(done)) for n in self.numbers}
        status = widgets.HTML("Committed: run the audit cell." if done else
                              "Pick a verdict for every claim, then commit.")
        button = widgets.Button(description="Commit my verdicts", button_style="info", disabled=bool(done))

        def on_click(_):
            if any(box.value == "?" for box in boxes.values()):
                status.value = "Pick a verdict for every claim first."
                return
            self.commit({n: box.value for n, box in boxes.items()})
            button.disabled = True
            for box in boxes.values():
                box.disabled = True
            status.value = "Committed. Now run the audit cell."

        button.on_click(on_click)
        return widgets.VBox([*boxes.values(), button, status])

    def _ipython_display_(self) -> None:
        print(repr(self))
        display(self.widget())


def predict_verdicts(article_number: str, numbers: Sequence[int]) -> VerdictForm:
    """Ask the learner for a verdict on each claim ``numbers`` of article ``article_number``."""
    return VerdictForm(article_number, numbers)
