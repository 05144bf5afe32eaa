"""Predict, then reveal: the learner commits to an answer before anything shows it.

``question = predict("...", {"yes": True, "no": False})`` shows the choices and a commit button; in a console, VS
Code, Colab or a test, ``question.commit("yes")`` does the same in code. The cell that computes the answer ends with
``question.reveal(computed_value, why=...)``. Until a prediction is committed the reveal shows the question and how
to commit, never the answer; afterwards it names the choice whose value equals the computed one, says whether the
prediction was right, and why. Cells between a prediction and its reveal whose output would give the answer away
(a panel, a table, a timing line) go through ``question.gate(render)``: ``render`` runs and shows only after the
commitment. In the solutions edition (``xtlab.course.edition.show_answers()``) everything shows at once.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import ipywidgets as widgets

from xtlab._checks import check_str
from xtlab.course.edition import answers_shown

# Commitments of this kernel, by question and choices: running a question's cell again (Run All after committing)
# brings back the commitment instead of asking again, so a prediction cannot be changed after the fact.
_COMMITTED: dict[tuple[str, tuple[str, ...]], str] = {}


def forget_predictions() -> None:
    """Forget every commitment of this kernel (a fresh start, as after a kernel restart; tests use it)."""
    _COMMITTED.clear()


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
        self.status = widgets.HTML("Pick an answer, commit it, then run the next cells.")
        self.button.on_click(lambda _: self._commit_from_widget())
        super().__init__([widgets.HTML(f"<b>Predict:</b> {html.escape(question)}"), self.radio, self.button,
                          self.status])
        earlier = _COMMITTED.get(self._key)
        if earlier is not None:
            self.commit(earlier)

    @property
    def _key(self) -> tuple[str, tuple[str, ...]]:
        return self.question, tuple(self.choices)

    def commit(self, label: str) -> None:
        """Commit ``label`` as the prediction: what the button does, and the way to commit without widgets."""
        if label not in self.choices:
            raise ValueError(f"label must be one of {list(self.choices)}, but got {label!r}")
        self.committed = label
        _COMMITTED[self._key] = label
        self.radio.value = label
        self.radio.disabled = self.button.disabled = True
        self.status.value = f"Committed: <b>{html.escape(label)}</b>. Now run the next cells."

    @property
    def unlocked(self) -> bool:
        """True when answers may show: a prediction is committed, or this is the solutions edition."""
        return self.committed is not None or answers_shown()

    def _commit_from_widget(self) -> None:
        if self.radio.value is None:
            self.status.value = "Pick one of the answers first."
            return
        self.commit(self.radio.value)

    def how_to_commit(self) -> str:
        """One line: the two ways to commit (the button, or code); it names no choice, so it favours none."""
        return ("commit a prediction first (the button above, or in code: the question's .commit(label) with one of "
                "its labels), then run this cell again")

    def reveal(self, computed: Any, why: str = "") -> Reveal:
        """The reveal of the answer whose value equals ``computed`` (raises ValueError when none does)."""
        matches = [label for label, value in self.choices.items() if _equal(value, computed)]
        if len(matches) != 1:
            raise ValueError(f"the computed value {computed!r:.80} must match exactly one choice of "
                             f"{self.choices!r:.200}, but matched {matches}")
        if not self.unlocked:
            return Reveal(self.question, None, None, "", self.how_to_commit())
        return Reveal(self.question, matches[0], self.committed, why)

    def gate(self, render: Callable[[], Any], what: str = "this cell's output") -> Gated:
        """``render()``'s output, shown only once a prediction is committed (it would give the answer away).

        ``render`` runs when the result is displayed: whatever it prints and whatever it returns (a figure, a panel,
        a table) appear then, and nothing of it before the commitment.
        """
        if not callable(render):
            raise TypeError(f"render must be a function of no arguments, but got {type(render).__name__}")
        check_str("what", what)
        return Gated(self, render, what)

    def _repr_mimebundle_(self, **kwargs: Any) -> dict | None:
        # ipywidgets clips the plain-text view at 110 characters: a static page (the site, GitHub) needs it whole
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is not None:
            bundle["text/plain"] = repr(self)
        return bundle

    def __repr__(self) -> str:
        # what a static page and nbval show: the question and the choices, never the answer
        lines = [f"Predict: {self.question}"] + [f"  - {label}" for label in self.choices]
        first = next(iter(self.choices))
        lines.append(f"(commit with the button in JupyterLab, or in code: question.commit({first!r}))")
        return "\n".join(lines)


def _equal(value: Any, computed: Any) -> bool:
    try:
        return bool(value == computed)
    except Exception:  # e.g. tensors of different shapes: not this choice
        return False


class Gated:
    """Output held back until its prediction is committed: displaying it runs ``render`` only then."""

    def __init__(self, prediction: Prediction, render: Callable[[], Any], what: str):
        self.prediction, self.render, self.what = prediction, render, what

    @property
    def locked_text(self) -> str:
        return (f"Hidden until you commit: {self.what} would answer the prediction "
                f"\"{self.prediction.question}\". To see it, {self.prediction.how_to_commit()}.")

    def _ipython_display_(self) -> None:
        from IPython.display import display

        if not self.prediction.unlocked:
            print(self.locked_text)
            return
        shown = self.render()
        if shown is not None:
            display(shown)

    def __repr__(self) -> str:
        if not self.prediction.unlocked:
            return self.locked_text
        return repr(self.render())


@dataclass(frozen=True)
class Reveal:
    """The computed answer to a prediction, or, before a commitment, how to commit.

    Attributes:
        question: the question asked.
        answer: the label of the choice the computation produced; None while the answer is held back.
        prediction: the committed label, or None when nothing was committed.
        why: one or two sentences on why, from the computation.
        locked: why the answer is held back and how to commit (empty once it shows).
    """

    question: str
    answer: str | None
    prediction: str | None
    why: str = ""
    locked: str = ""

    @property
    def verdict(self) -> str:
        if self.answer is None:
            return f"Not revealed yet: {self.locked}."
        if self.prediction is None:
            return "Shown without a prediction (solutions edition)."
        if self.prediction == self.answer:
            return f"You predicted {self.prediction!r}: right."
        return f"You predicted {self.prediction!r}: not this time."

    @property
    def right(self) -> bool | None:
        """Whether the committed prediction matched the computed answer (None without both)."""
        if self.answer is None or self.prediction is None:
            return None
        return self.prediction == self.answer

    def _repr_html_(self) -> str:
        if self.answer is None:
            return f"<p><b>Reveal</b>: {html.escape(self.question)}<br>{html.escape(self.verdict)}</p>"
        why = f"<p>{html.escape(self.why)}</p>" if self.why else ""
        return (f"<details><summary><b>Reveal</b> (computed by this cell): {html.escape(self.question)}</summary>"
                f"<p>Answer: <b>{html.escape(self.answer)}</b></p>{why}<p>{html.escape(self.verdict)}</p></details>")

    def __repr__(self) -> str:
        if self.answer is None:
            return f"Reveal: {self.question}\n{self.verdict}"
        why = f"\n{self.why}" if self.why else ""
        return f"Reveal: {self.question}\nAnswer (computed): {self.answer}{why}\n{self.verdict}"


def predict(question: str, choices: Sequence[str] | Mapping[str, Any]) -> Prediction:
    """A :class:`Prediction` widget for ``question``."""
    return Prediction(question, choices)
