"""What nbval compares is the same on CPU and CUDA: no stored output of a compared cell names the device it ran
on (after the sanitizer's rules), and no compared output prints float noise (a number at or below 1e-6 with more
than one significant digit: it differs between devices). Device-specific measurements live in cells marked
``# NBVAL_IGNORE_OUTPUT``, and tests assert their conclusions per device. An article's claim quoted in an output
(an audit row: "fused=True is faster on CUDA devices") is the article's text, the same on every device."""

import configparser
import json
import re
from pathlib import Path

import pytest

from xtlab.course import article

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted((ROOT / "solutions").glob("*.ipynb"))
IGNORED = ("NBVAL_IGNORE_OUTPUT", "NBVAL_SKIP")
DEVICE_TEXT = re.compile(r"cuda:\d|device\(type=|\bon (cuda|the GPU)\b|torch\.cuda|NVIDIA|\bmps\b", re.I)
FLOAT_NOISE = re.compile(r"(?<![\w.])(?!1(\.0+)?e)\d(\.\d+)?e-(0?[6-9]|[1-9]\d)\b")


CLAIMS = sorted((text for number in ("000", "001", "002", "003", "004") for text in article(number).claims.values()),
                key=len, reverse=True)


def without_quoted_claims(text: str) -> str:
    for claim in CLAIMS:
        text = text.replace(claim, "<claim>")
    return text


def sanitized(text: str) -> str:
    """``text`` after the nbval sanitizer's rules (what nbval actually compares)."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(ROOT / "notebooks" / "nbval_sanitize.cfg")
    for section in parser.sections():
        text = re.sub(parser[section]["regex"], parser[section]["replace"], text)
    return text


def compared_outputs(path: Path) -> list[tuple[int, str]]:
    found = []
    for index, cell in enumerate(json.loads(path.read_text())["cells"]):
        if cell["cell_type"] != "code" or any(mark in "".join(cell["source"]) for mark in IGNORED):
            continue
        for output in cell.get("outputs", []):
            text = "".join(output.get("text", "")) + "".join(output.get("data", {}).get("text/plain", ""))
            found.append((index, without_quoted_claims(sanitized(text))))
    return found


def test_the_patterns_catch_what_they_are_for():
    assert DEVICE_TEXT.search("tensor([1.], device='cuda:0')") and DEVICE_TEXT.search("ran on the GPU")
    assert not DEVICE_TEXT.search("gloo on CPU, 2 ranks")
    assert FLOAT_NOISE.search("max |diff| 2.4e-07") and FLOAT_NOISE.search("4.2e-07 stored")
    assert not FLOAT_NOISE.search("tolerance 1e-06") and not FLOAT_NOISE.search("0.0012 and 3.5e-03")
    assert sanitized("cpu (2 threads)") == "DEVICE"
    quoted = article("002").claims[next(n for n, c in article("002").claims.items() if "CUDA" in c)]
    assert DEVICE_TEXT.search(quoted) and not DEVICE_TEXT.search(without_quoted_claims(f"claim: {quoted}"))
    assert DEVICE_TEXT.search(without_quoted_claims("the step ran on cuda, 2.1x"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_compared_outputs_do_not_depend_on_the_device(path):
    problems = []
    for index, text in compared_outputs(path):
        for pattern, what in ((DEVICE_TEXT, "names a device"), (FLOAT_NOISE, "prints float noise")):
            match = pattern.search(text)
            if match:
                start = max(match.start() - 60, 0)
                problems.append(f"cell {index} {what}: ...{text[start:match.end() + 20]!r}")
    assert problems == [], "\n".join(problems)
