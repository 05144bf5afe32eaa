"""The English pages of the articles the labs audit (xtlab/articles/): their strict structure, the index, packaging.

A lab cites "article NNN, claim K", so each page must keep the shape a parser reads: a heading, four fields, a
Setting in prose and numbered claims. The pages paraphrase the Chinese originals; a long run of CJK characters
outside the title field would mean copied prose.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]
ARTICLES = REPO / "xtlab" / "articles"

# page -> (article number, original file, lab number, lab notebook stem, lab title)
PAGES = {
    "000_encoder_decoder_ddp.md": ("000", "000_5125704bae4041ad.txt", "05", "05_encoder_decoder_ddp",
                                   "Encoder-decoder and DDP"),
    "001_layer_dropout.md": ("001", "001_86bdd0bfe55f424e.txt", "01", "01_layer_dropout", "Layer dropout"),
    "002_optimizer_groups.md": ("002", "002_430399b3fada57cb.txt", "04", "04_optimizer_groups", "Optimizer groups"),
    "003_weight_tying.md": ("003", "003_ead85789676cbeaa.txt", "02", "02_weight_tying", "Weight tying"),
    "004_xl_rotary.md": ("004", "004_3a5b2012a47ee5ae.txt", "03", "03_xl_rotary", "XL memories and rotary"),
}

HEADING = re.compile(r"# Article (\d{3}): (\S.*)")
TITLE_FIELD = "- **Title (as given):** "
# CJK ideographs (with extension A and compatibility forms), CJK punctuation, kana, and full-width forms
CJK_RUN = re.compile("[\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]{8,}")
SENTENCE_END = re.compile(r"[.!?](?=\s|$)")
MIN_CLAIMS, MAX_CLAIMS, MAX_CLAIM_CHARS = 5, 12, 300


def _sections(text: str) -> dict[str, str]:
    """The body of each ``## `` section, by its name; the text before the first one under ``""``."""
    parts = re.split(r"^## (.+)$", text, flags=re.M)
    sections = {"": parts[0]}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        assert name.strip() not in sections, f"section {name.strip()!r} appears twice"
        sections[name.strip()] = body
    return sections


def _claims(body: str) -> list[tuple[int, str]]:
    """The numbered items of a Claims section; every non-blank line must be one."""
    items = []
    for line in body.strip().splitlines():
        if not line.strip():
            continue
        match = re.fullmatch(r"(\d+)\. (\S.*)", line)
        assert match, f"a line of the Claims section is not a numbered claim: {line!r}"
        items.append((int(match[1]), match[2]))
    return items


def _page(name: str) -> str:
    path = ARTICLES / name
    assert path.is_file(), f"missing page {path.relative_to(REPO)}"
    return path.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", PAGES)
def test_page_exists_and_is_listed_in_the_index(name):
    _page(name)
    index = (ARTICLES / "README.md").read_text(encoding="utf-8")
    assert f"]({name})" in index, f"{name} is not linked from xtlab/articles/README.md"


@pytest.mark.parametrize("name", PAGES)
def test_heading(name):
    number = PAGES[name][0]
    lines = _page(name).splitlines()
    match = HEADING.fullmatch(lines[0])
    assert match, f"first line must be '# Article NNN: <English title>', got {lines[0]!r}"
    assert match[1] == number and name.startswith(number + "_")
    assert not CJK_RUN.search(match[2])
    assert lines[1] == "", "a blank line must follow the heading"


@pytest.mark.parametrize("name", PAGES)
def test_fields(name):
    number, original, lab, stem, lab_title = PAGES[name]
    head = _sections(_page(name))[""].strip().splitlines()
    fields = [line for line in head[1:] if line.strip()]
    assert len(fields) == 5, f"expected the title, author, source, lab and original fields, got {fields}"
    title, author, source, lab_line, original_line = fields
    assert title.startswith(TITLE_FIELD) and title[len(TITLE_FIELD):].strip()
    for line, field in ((author, "Author"), (source, "Source")):
        assert re.fullmatch(rf"- \*\*{field}:\*\* \S.*", line), f"bad {field} field: {line!r}"
    assert lab_line == f"- **Lab:** [Lab {lab} — {lab_title}](../../notebooks/{stem}.ipynb)"
    assert (REPO / "notebooks" / f"{stem}.ipynb").exists()
    assert original_line == (f"- **Original:** `shared/articles/{original}` "
                             "(Chinese; kept outside the course repository)")


@pytest.mark.parametrize("name", PAGES)
def test_setting_has_at_least_three_sentences(name):
    sections = _sections(_page(name))
    assert list(sections) == ["", "Setting", "Claims"], f"sections must be Setting then Claims, got {list(sections)}"
    setting = sections["Setting"].strip()
    assert len(SENTENCE_END.findall(setting)) >= 3, f"Setting needs at least 3 sentences: {setting!r}"


@pytest.mark.parametrize("name", PAGES)
def test_claims_are_numbered_and_short(name):
    claims = _claims(_sections(_page(name))["Claims"])
    numbers = [n for n, _ in claims]
    assert numbers == list(range(1, len(claims) + 1)), f"claims must be numbered 1..N in order, got {numbers}"
    assert MIN_CLAIMS <= len(claims) <= MAX_CLAIMS, f"{len(claims)} claims, want {MIN_CLAIMS} to {MAX_CLAIMS}"
    long = [n for n, text in claims if len(text) > MAX_CLAIM_CHARS]
    assert not long, f"claims {long} are longer than {MAX_CLAIM_CHARS} characters"


@pytest.mark.parametrize("name", PAGES)
def test_no_copied_chinese_prose(name):
    for number, line in enumerate(_page(name).splitlines(), start=1):
        if line.startswith(TITLE_FIELD):
            continue
        run = CJK_RUN.search(line)
        assert not run, f"{name}:{number}: {len(run[0])} CJK characters in a row outside the title field"


def test_index_agrees_with_the_pages():
    index = (ARTICLES / "README.md").read_text(encoding="utf-8")
    assert not CJK_RUN.search(index)
    row = re.compile(r"^\| \[(\d{3})\]\((\d{3}_\w+\.md)\) \| (.+?) \| (.+?) \| (\d+) \|$", flags=re.M)
    rows = {m[2]: m for m in row.finditer(index)}
    assert sorted(rows) == sorted(PAGES), f"the index lists {sorted(rows)}"
    for name, (number, _, title, lab_link, count) in ((name, m.groups()) for name, m in rows.items()):
        page = _page(name)
        expected_number, _, lab, stem, lab_title = PAGES[name]
        assert number == expected_number, f"{name}: the index numbers it {number}"
        assert title == HEADING.fullmatch(page.splitlines()[0])[2], f"{name}: the index's title differs"
        assert lab_link == f"[Lab {lab} — {lab_title}](../../notebooks/{stem}.ipynb)", f"{name}: the index's lab"
        assert int(count) == len(_claims(_sections(page)["Claims"])), f"{name}: the index's claim count differs"
    assert sorted(p.name for p in ARTICLES.glob("*.md")) == sorted([*PAGES, "README.md"]), "unexpected pages"


def test_wheel_includes_the_pages():
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    package_data = config["tool"]["setuptools"]["package-data"]["xtlab"]
    assert "articles/*.md" in package_data and "py.typed" in package_data
    assert not (ARTICLES / "__init__.py").exists(), "xtlab/articles is a data folder, not a package"
