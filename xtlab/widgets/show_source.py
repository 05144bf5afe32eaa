"""Show the mechanism: the library lines a lab is about, highlighted, with their file and line numbers."""

from __future__ import annotations

import html
import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer

import xtlab

_PACKAGE_ROOT = Path(xtlab.__file__).resolve().parent.parent


@dataclass(frozen=True)
class Source:
    """Source lines of one function, method or class.

    Attributes:
        qualname: e.g. ``Block.forward``.
        path: the file, relative to the folder that holds the package (``xtlab/model/block.py``).
        first_line: the line number of ``lines[0]`` in that file.
        lines: the source lines, without line endings.
        emphasized: line numbers (in the file) to highlight.
    """

    qualname: str
    path: str
    first_line: int
    lines: tuple[str, ...]
    emphasized: tuple[int, ...] = ()

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def __repr__(self) -> str:
        width = len(str(self.first_line + len(self.lines)))
        body = [f"{'>' if n in self.emphasized else ' '}{n:>{width}}  {line}"
                for n, line in enumerate(self.lines, start=self.first_line)]
        return "\n".join([f"# {self.qualname} — {self.path}, lines {self.first_line}-{self.last_line}", *body])

    @property
    def last_line(self) -> int:
        return self.first_line + len(self.lines) - 1

    def _repr_html_(self) -> str:
        marked = [n - self.first_line + 1 for n in self.emphasized]
        formatter = HtmlFormatter(linenos="inline", linenostart=self.first_line, hl_lines=marked, noclasses=True,
                                  style="friendly", cssstyles="padding: 0.4em; line-height: 1.3")
        title = f"<div><code>{html.escape(self.qualname)}</code> — {html.escape(self.path)}, lines " \
                f"{self.first_line}-{self.last_line}</div>"
        return title + highlight(self.text, PythonLexer(), formatter)


def show_source(obj: Any, emphasize: Sequence[str] = ()) -> Source:
    """The source of ``obj`` (function, method or class), with the lines containing any of ``emphasize`` marked.

    Args:
        obj: what to show, e.g. ``Block.forward``.
        emphasize: substrings; every line that contains one is highlighted (and marked ``>`` in plain text).
    """
    target = inspect.unwrap(obj)
    try:
        lines, first_line = inspect.getsourcelines(target)
        path = Path(inspect.getsourcefile(target) or "").resolve()
    except (TypeError, OSError) as err:
        raise TypeError(f"obj must be a function, method or class with Python source, but got "
                        f"{type(obj).__name__}: {obj!r:.80} ({err})") from None
    if isinstance(emphasize, str) or not all(isinstance(word, str) for word in emphasize):
        raise TypeError(f"emphasize must be a list of str, but got {emphasize!r:.80}")
    lines = tuple(line.rstrip("\n") for line in lines)
    emphasized = tuple(n for n, line in enumerate(lines, start=first_line) if any(w in line for w in emphasize))
    parts = path.parts
    if "site-packages" in parts:  # an installed package (x-transformers, torch): from the package folder down
        shown_path = "/".join(parts[parts.index("site-packages") + 1:])
    elif path.is_relative_to(_PACKAGE_ROOT):
        shown_path = path.relative_to(_PACKAGE_ROOT).as_posix()
    else:
        shown_path = path.name
    qualname = getattr(target, "__qualname__", getattr(target, "__name__", type(target).__name__))
    return Source(qualname, shown_path, first_line, lines, emphasized)
