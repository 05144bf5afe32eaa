"""Audit the article: each claim an article makes, the verdict a cell computed for it, and the evidence."""

from __future__ import annotations

import html
from dataclasses import dataclass

HOLDS, CAVEAT, FAILS = "holds", "holds with a caveat", "does not hold"
VERDICTS = (HOLDS, CAVEAT, FAILS)


@dataclass(frozen=True)
class Claim:
    """One claim of an article and its computed verdict.

    Attributes:
        claim: the claim, paraphrased in English (never the article's words).
        verdict: ``"holds"``, ``"holds with a caveat"`` or ``"does not hold"``, decided by code from a measurement.
        evidence: the measurement behind the verdict, with its numbers, and where in the notebook it is computed.
    """

    claim: str
    verdict: str
    evidence: str

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, but got {self.verdict!r}")


def verdict_of(holds: bool, caveat: bool = False) -> str:
    """The verdict for a measured claim: ``holds`` / ``holds with a caveat`` / ``does not hold``."""
    if not isinstance(holds, bool) or not isinstance(caveat, bool):
        raise TypeError(f"holds and caveat must be bools, but got {holds!r} and {caveat!r}")
    if not holds:
        return FAILS
    return CAVEAT if caveat else HOLDS


@dataclass(frozen=True)
class ArticleAudit:
    """The audit table of one article: shown as an HTML table in a notebook, as aligned text elsewhere.

    Attributes:
        article: which article (file name under ``shared/articles`` and its subject).
        claims: the claims in the article's order.
    """

    article: str
    claims: tuple[Claim, ...]

    def __post_init__(self) -> None:
        if not self.claims or not all(isinstance(claim, Claim) for claim in self.claims):
            raise TypeError(f"claims must be a non-empty tuple of Claim, but got {self.claims!r:.120}")

    def count(self, verdict: str) -> int:
        return sum(claim.verdict == verdict for claim in self.claims)

    def _repr_html_(self) -> str:
        rows = "".join(f"<tr><td>{n}</td><td>{html.escape(c.claim)}</td><td><b>{html.escape(c.verdict)}</b></td>"
                       f"<td>{html.escape(c.evidence)}</td></tr>" for n, c in enumerate(self.claims, start=1))
        return (f"<p>Audit of {html.escape(self.article)}</p><table><thead><tr><th>#</th><th>claim</th>"
                f"<th>verdict (computed)</th><th>evidence</th></tr></thead><tbody>{rows}</tbody></table>")

    def __repr__(self) -> str:
        lines = [f"Audit of {self.article}"]
        for n, claim in enumerate(self.claims, start=1):
            lines.append(f"{n}. [{claim.verdict}] {claim.claim}\n   evidence: {claim.evidence}")
        return "\n".join(lines)
