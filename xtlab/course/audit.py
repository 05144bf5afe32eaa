"""Audit the article: one claim per row, cited by its number on the article's page, a verdict computed by a cell
under written rules, and the evidence.

The three verdicts and their rules (shown in every lab, printed in every row):

- **holds**: the measurement confirms the claim as the article states it, in the article's own setting;
- **holds only under an unstated condition**: it is confirmed only when a condition holds that the article does
  not state (the row names it); without that condition the article's setting gives a counterexample;
- **does not hold**: a condition the article itself states makes it false, or its own setting allows a measured
  counterexample.

Before the computed verdicts show, the learner records one verdict per claim (:class:`VerdictPrediction`, drawn
as a form by ``xtlab.widgets.predict_verdicts``), in code or with the form; ``guess.reveal(audit)`` then shows the
table with the learner's verdicts and how many matched.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from xtlab.course.articles import Article, article
from xtlab.course.edition import answers_shown

HOLDS, UNSTATED, FAILS = "holds", "holds only under an unstated condition", "does not hold"
VERDICTS = (HOLDS, UNSTATED, FAILS)
RULES = {
    HOLDS: "the measurement confirms the claim as stated, in the article's own setting",
    UNSTATED: "confirmed only under a condition the article does not state (named here); without it the "
              "article's setting gives a counterexample",
    FAILS: "a condition the article states makes it false, or its own setting allows a measured counterexample",
}
# short names a learner may type for a verdict
_ALIASES = {"holds": HOLDS, "unstated": UNSTATED, "condition": UNSTATED, "fails": FAILS, "does not hold": FAILS,
            UNSTATED: UNSTATED}


def verdict_of(confirmed: bool, needs_unstated_condition: bool = False) -> str:
    """The verdict under the rules: not confirmed -> does not hold; confirmed only under a condition the article
    leaves out -> holds only under an unstated condition; otherwise holds."""
    if not isinstance(confirmed, bool) or not isinstance(needs_unstated_condition, bool):
        raise TypeError(f"confirmed and needs_unstated_condition must be bools, but got {confirmed!r} and "
                        f"{needs_unstated_condition!r}")
    if not confirmed:
        return FAILS
    return UNSTATED if needs_unstated_condition else HOLDS


def rules_text() -> str:
    """The three verdicts and their rules, one per line."""
    return "\n".join(f"- {verdict}: {rule}" for verdict, rule in RULES.items())


@dataclass(frozen=True)
class Claim:
    """One row of an audit: a claim cited by number, its computed verdict and the evidence.

    Attributes:
        number: the claim's number on the article's page.
        verdict: one of ``VERDICTS``, decided by code from a measurement (see :func:`verdict_of`).
        evidence: the measurement behind the verdict, with its numbers, and where in the notebook it is computed.
        condition: for ``holds only under an unstated condition``: the condition the article leaves out.
    """

    number: int
    verdict: str
    evidence: str
    condition: str = ""

    def __post_init__(self) -> None:
        if isinstance(self.number, bool) or not isinstance(self.number, int):
            raise TypeError(f"number must be the claim's number on the article's page (an int), but got "
                            f"{type(self.number).__name__}: {self.number!r:.60}")
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, but got {self.verdict!r}")
        if (self.verdict == UNSTATED) != bool(self.condition):
            raise ValueError(f"claim {self.number}: a condition is given exactly when the verdict is {UNSTATED!r} "
                             f"(verdict {self.verdict!r}, condition {self.condition!r})")

    @property
    def rule(self) -> str:
        """The rule that gives this verdict, with the condition named where there is one."""
        rule = RULES[self.verdict]
        return f"{rule}: {self.condition}" if self.condition else rule


@dataclass(frozen=True)
class ArticleAudit:
    """The audit table of one article, its rows cited by claim number from the article's page.

    Attributes:
        article: the article's number, e.g. ``"001"``.
        claims: the rows, one claim each, in the article's order.
    """

    article: str
    claims: tuple[Claim, ...]

    def __post_init__(self) -> None:
        if not self.claims or not all(isinstance(claim, Claim) for claim in self.claims):
            raise TypeError(f"claims must be a non-empty tuple of Claim, but got {self.claims!r:.120}")
        numbers = [claim.number for claim in self.claims]
        if len(set(numbers)) != len(numbers):
            raise ValueError(f"each claim is judged once, but the rows cite {numbers}")
        for number in numbers:
            self.page.claim(number)  # ValueError for a number the page lacks

    @property
    def page(self) -> Article:
        return article(self.article)

    def text(self, claim: Claim) -> str:
        return self.page.claim(claim.number)

    def count(self, verdict: str) -> int:
        return sum(claim.verdict == verdict for claim in self.claims)

    def summary(self) -> str:
        return ", ".join(f"{self.count(verdict)} {verdict}" for verdict in VERDICTS)

    def _rows_html(self, guesses: Mapping[int, str] | None = None) -> str:
        rows = []
        for claim in self.claims:
            guess = "" if guesses is None else f"<td>{html.escape(guesses.get(claim.number, '-'))}</td>"
            rows.append(f"<tr><td>{claim.number}</td><td>{html.escape(self.text(claim))}</td>{guess}"
                        f"<td><b>{html.escape(claim.verdict)}</b></td><td>{html.escape(claim.rule)}</td>"
                        f"<td>{html.escape(claim.evidence)}</td></tr>")
        head = "<th>your verdict</th>" if guesses is not None else ""
        return (f"<p>Audit of article {self.article}: {html.escape(self.page.title)} (claims numbered as on "
                f"<code>{html.escape(self.page.path)}</code>); {html.escape(self.summary())}</p><table><thead><tr>"
                f"<th>#</th><th>claim</th>{head}<th>verdict (computed)</th><th>rule applied</th><th>evidence</th>"
                f"</tr></thead><tbody>{''.join(rows)}</tbody></table>")

    def _repr_html_(self) -> str:
        return self._rows_html()

    def lines(self, guesses: Mapping[int, str] | None = None) -> list[str]:
        lines = [f"Audit of article {self.article}: {self.page.title} (claims numbered as on {self.page.path})"]
        for claim in self.claims:
            mine = "" if guesses is None else f"   your verdict: {guesses.get(claim.number, '-')}\n"
            lines.append(f"{claim.number}. [{claim.verdict}] {self.text(claim)}\n{mine}   rule: {claim.rule}\n"
                         f"   evidence: {claim.evidence}")
        lines.append(f"verdicts: {self.summary()}")
        return lines

    def __repr__(self) -> str:
        return "\n".join(self.lines())


# the learner's committed verdicts in this kernel, by article and claims: running the cell again keeps them
_COMMITTED_VERDICTS: dict[tuple[str, tuple[int, ...]], dict[int, str]] = {}


def forget_verdicts() -> None:
    """Forget every committed set of verdicts of this kernel (tests use it)."""
    _COMMITTED_VERDICTS.clear()


class VerdictPrediction:
    """The learner's verdict on each claim of an audit, committed before the computed verdicts show.

    Args:
        article_number: the article, e.g. ``"001"``.
        numbers: the claims to judge (those the audit will compute), by their numbers on the page.
    """

    def __init__(self, article_number: str, numbers: Sequence[int]):
        self.page = article(article_number)
        self.numbers = tuple(numbers)
        for number in self.numbers:
            self.page.claim(number)
        if not self.numbers:
            raise ValueError("numbers must name at least one claim to judge")
        earlier = _COMMITTED_VERDICTS.get((self.page.number, self.numbers))
        self.committed: dict[int, str] | None = dict(earlier) if earlier is not None else None

    def commit(self, verdicts: Mapping[int, str]) -> None:
        """Commit a verdict for every claim: ``{1: "holds", 2: "unstated", 3: "fails"}`` (full names work too)."""
        if not isinstance(verdicts, Mapping):
            raise TypeError(f"verdicts must be a dict claim number -> verdict, but got {type(verdicts).__name__}")
        missing = [number for number in self.numbers if number not in verdicts]
        unknown = [number for number in verdicts if number not in self.numbers]
        if missing or unknown:
            raise ValueError(f"give one verdict for each of claims {list(self.numbers)}: missing {missing}, "
                             f"unknown {unknown}")
        resolved = {}
        for number, verdict in verdicts.items():
            if not isinstance(verdict, str) or verdict.strip().lower() not in _ALIASES:
                raise ValueError(f"claim {number}: verdict must be one of {VERDICTS} (or holds/unstated/fails), "
                                 f"but got {verdict!r}")
            resolved[number] = _ALIASES[verdict.strip().lower()]
        self.committed = resolved
        _COMMITTED_VERDICTS[(self.page.number, self.numbers)] = dict(resolved)

    @property
    def unlocked(self) -> bool:
        return self.committed is not None or answers_shown()

    def __repr__(self) -> str:
        lines = [f"Your verdicts on article {self.page.number} ({self.page.path}), before the computed ones:"]
        lines += [f"  claim {n}: {self.page.claim(n)}" for n in self.numbers]
        lines.append("The rules:\n" + rules_text())
        first = self.numbers[0]
        lines.append(f"Commit with the dropdowns, or in code: guess.commit({{{first}: 'holds', ...}}) using "
                     "'holds', 'unstated' or 'fails' for each claim.")
        return "\n".join(lines)

    def reveal(self, audit: ArticleAudit) -> AuditReveal:
        """The computed audit next to the committed verdicts; before a commitment, only the claims."""
        if not isinstance(audit, ArticleAudit):
            raise TypeError(f"audit must be an ArticleAudit, but got {type(audit).__name__}")
        if audit.article != self.page.number or {c.number for c in audit.claims} != set(self.numbers):
            raise ValueError(f"the audit judges claims {[c.number for c in audit.claims]} of article "
                             f"{audit.article}, but the learner was asked about {list(self.numbers)} of "
                             f"{self.page.number}")
        return AuditReveal(audit, self.committed if self.committed is not None else None, self.unlocked)


@dataclass(frozen=True)
class AuditReveal:
    """An audit shown after the learner's verdicts: their verdict, the computed one, and how many matched."""

    audit: ArticleAudit
    guesses: dict[int, str] | None
    unlocked: bool

    @property
    def matched(self) -> int | None:
        if self.guesses is None:
            return None
        return sum(self.guesses.get(claim.number) == claim.verdict for claim in self.audit.claims)

    def _score(self) -> str:
        if self.guesses is None:
            return "Shown without your verdicts (solutions edition)."
        return f"Your verdicts matched {self.matched} of {len(self.audit.claims)} computed ones."

    def __repr__(self) -> str:
        if not self.unlocked:
            return (f"Audit of article {self.audit.article}: {len(self.audit.claims)} claims judged by this cell. "
                    "The computed verdicts are hidden until you commit yours (the cell above), then run this cell "
                    "again.")
        return "\n".join([*self.audit.lines(self.guesses), self._score()])

    def _repr_html_(self) -> str:
        if not self.unlocked:
            return f"<p>{html.escape(repr(self))}</p>"
        return self.audit._rows_html(self.guesses) + f"<p>{html.escape(self._score())}</p>"
