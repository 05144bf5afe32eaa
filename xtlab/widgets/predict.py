"""Predict, then reveal: the learner commits to an answer before the cell that computes it runs.

``question = predict("...", {"yes": True, "no": False})`` shows the choices and a commit button. The next cell
computes the answer and ends with ``question.reveal(computed_value, why=...)``: the reveal names the choice whose
value equals the computed one (never a typed answer) and compares it with the committed prediction. Its HTML
view is folded in a ``<details>`` element, so a static page (GitHub, nbviewer, the course site) keeps the answer
hidden until the reader opens it.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import ipywidgets as widgets

from xtlab._checks import check_str


class Prediction(widgets.VBox):
    """A question with choices and a commit button; ``reveal`` shows the computed answer against the commitment.

    Args:
        question: what to predict, one sentence.
        choices: the answers to pick from: a sequence of labels, or a mapping label -> the value a computation
            yields for that answer (so ``reveal`` can find the label from the computed value).
    """

    def __init__(self, question: str, choices: Sequence[str] | Mapping[str, Any]):
        check_str("question", question)
        if isinstance(choices, Mapping):
            self.choices = dict(choices)
        elif isinstance(choices, Sequence) and not isinstance(choices, str):
            self.choices = {label: label for label in choices}
        else:
            raise TypeError(f"choices must be a list of labels or a dict label -> value, but got "
                            f"{type(choices).__name__}: {choices!r:.80}")
        if len(self.choices) < 2 or not all(isinstance(label, str) for label in self.choices):
            raise ValueError(f"choices must hold at least two str labels, but got {list(self.choices)!r:.120}")
        self.question = question
        self.committed: str | None = None
        self.radio = widgets.RadioButtons(options=list(self.choices), value=None,
                                          layout=widgets.Layout(width="max-content"))
        self.button = widgets.Button(description="Commit my prediction", button_style="info")
        self.status = widgets.HTML("Pick an answer, commit it, then run the next cell.")
        self.button.on_click(lambda _: self._commit_from_widget())
        super().__init__([widgets.HTML(f"<b>Predict:</b> {html.escape(question)}"), self.radio, self.button,
                          self.status])

    def commit(self, label: str) -> None:
        """Commit ``label`` as the prediction (what the button does; tests call it directly)."""
        if label not in self.choices:
            raise ValueError(f"label must be one of {list(self.choices)}, but got {label!r}")
        self.committed = label
        self.radio.value = label
        self.radio.disabled = self.button.disabled = True
        self.status.value = f"Committed: <b>{html.escape(label)}</b>. Now run the next cell."

    def _commit_from_widget(self) -> None:
        if self.radio.value is None:
            self.status.value = "Pick one of the answers first."
            return
        self.commit(self.radio.value)

    def reveal(self, computed: Any, why: str = "") -> Reveal:
        """The reveal of the answer whose value equals ``computed`` (raises ValueError when none does)."""
        matches = [label for label, value in self.choices.items() if _equal(value, computed)]
        if len(matches) != 1:
            raise ValueError(f"the computed value {computed!r:.80} must match exactly one choice of "
                             f"{self.choices!r:.200}, but matched {matches}")
        return Reveal(self.question, matches[0], self.committed, why)

    def __repr__(self) -> str:
        # what a static page and nbval show: the question and the choices, never the answer
        lines = [f"Predict: {self.question}"] + [f"  - {label}" for label in self.choices]
        lines.append("(commit an answer in JupyterLab, then run the next cell)")
        return "\n".join(lines)


def _equal(value: Any, computed: Any) -> bool:
    try:
        return bool(value == computed)
    except Exception:  # e.g. tensors of different shapes: not this choice
        return False


@dataclass(frozen=True)
class Reveal:
    """The computed answer to a prediction, folded in HTML views.

    Attributes:
        question: the question asked.
        answer: the label of the choice the computation produced.
        prediction: the committed label, or None when nothing was committed.
        why: one or two sentences on why, from the computation.
    """

    question: str
    answer: str
    prediction: str | None
    why: str = ""

    @property
    def verdict(self) -> str:
        if self.prediction is None:
            return "You did not commit a prediction: commit one above and run this cell again."
        if self.prediction == self.answer:
            return f"You predicted {self.prediction!r}: right."
        return f"You predicted {self.prediction!r}: not this time."

    def _repr_html_(self) -> str:
        why = f"<p>{html.escape(self.why)}</p>" if self.why else ""
        return (f"<details><summary><b>Reveal</b> (computed by this cell): {html.escape(self.question)}</summary>"
                f"<p>Answer: <b>{html.escape(self.answer)}</b></p>{why}<p>{html.escape(self.verdict)}</p></details>")

    def __repr__(self) -> str:
        why = f"\n{self.why}" if self.why else ""
        return f"Reveal: {self.question}\nAnswer (computed): {self.answer}{why}\n{self.verdict}"


def predict(question: str, choices: Sequence[str] | Mapping[str, Any]) -> Prediction:
    """A :class:`Prediction` widget for ``question``."""
    return Prediction(question, choices)
