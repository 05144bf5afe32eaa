"""The articles the labs answer, as the course's own English pages (``xtlab/articles/NNN_<topic>.md``).

Each page gives the article's title, author and source as the article gives them, its setting, and its claims
numbered and paraphrased. Audits cite claims by these numbers; :func:`article` reads a page, so the claim a row
judges is the one the page states, word for word.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from xtlab._checks import check_str

PAGES = Path(__file__).resolve().parents[1] / "articles"
_HEADING = re.compile(r"^# Article (\d{3}): (.+)$")
_FIELD = re.compile(r"^- \*\*(Title \(as given\)|Author|Source|Lab|Original):\*\* (.+)$")
_CLAIM = re.compile(r"^(\d+)\. (.+)$")


@dataclass(frozen=True)
class Article:
    """One article's page.

    Attributes:
        number: the article's three-digit number, e.g. ``"001"``.
        title: the title in English.
        fields: the page's fields as written: ``Title (as given)``, ``Author``, ``Source``, ``Lab``, ``Original``.
        setting: what the author did and observed, in a few sentences.
        claims: the claims by number, paraphrased.
        path: the page's path inside the repository, e.g. ``xtlab/articles/001_layer_dropout.md``.
    """

    number: str
    title: str
    fields: dict[str, str]
    setting: str
    claims: dict[int, str]
    path: str

    def claim(self, number: int) -> str:
        """The text of claim ``number``; ValueError naming the page's numbers when it has no such claim."""
        if isinstance(number, bool) or not isinstance(number, int):
            raise TypeError(f"a claim number must be an int, but got {type(number).__name__}: {number!r:.40}")
        if number not in self.claims:
            raise ValueError(f"article {self.number} has claims {min(self.claims)}..{max(self.claims)}, "
                             f"but got claim number {number}")
        return self.claims[number]


def page_path(number: str) -> Path:
    """The page of article ``number`` (``"000"`` ... ``"004"``)."""
    check_str("number", number)
    found = sorted(PAGES.glob(f"{number}_*.md"))
    if len(found) != 1:
        known = sorted(path.name[:3] for path in PAGES.glob("[0-9][0-9][0-9]_*.md"))
        raise ValueError(f"no article page numbered {number!r}; the pages are {known}")
    return found[0]


@cache
def article(number: str) -> Article:
    """Article ``number`` read from its page."""
    path = page_path(number)
    lines = path.read_text(encoding="utf-8").splitlines()
    heading = _HEADING.match(lines[0]) if lines else None
    if heading is None or heading.group(1) != number:
        raise ValueError(f"{path.name}: the first line must read '# Article {number}: <title>'")
    fields = {match.group(1): match.group(2).strip() for line in lines if (match := _FIELD.match(line))}
    setting = " ".join(_section(lines, "## Setting")).strip()
    claims: dict[int, str] = {}
    for line in _section(lines, "## Claims"):
        match = _CLAIM.match(line)
        if match:
            claims[int(match.group(1))] = match.group(2).strip()
        elif line.strip() and claims:  # a claim wrapped onto the next line
            last = max(claims)
            claims[last] = f"{claims[last]} {line.strip()}"
    if list(claims) != list(range(1, len(claims) + 1)):
        raise ValueError(f"{path.name}: claims must be numbered 1..N in order, but got {list(claims)}")
    return Article(number, heading.group(2).strip(), fields, setting, claims,
                   str(path.relative_to(PAGES.parents[1])))


def _section(lines: list[str], title: str) -> list[str]:
    if title not in lines:
        return []
    start = lines.index(title) + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("## ")), len(lines))
    return lines[start:end]
