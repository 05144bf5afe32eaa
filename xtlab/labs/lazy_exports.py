"""A lab package's names, each imported from its module on first use (PEP 562), so a process that needs one module
(a DDP or FSDP rank unpickling one function) does not import the whole lab, x-transformers and matplotlib included.

Usage, in a lab's ``__init__.py``: ``__all__, __getattr__, __dir__ = lazy_exports(__name__, {"name": "module"})``.
``check`` is always exported: ``EXERCISES.check`` (``lab.check(name, answer)`` -> PASS / NOT YET / TRY AGAIN).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any


def lazy_exports(package: str, module_of: dict[str, str]) -> tuple[list[str], Callable[[str], Any],
                                                                     Callable[[], list[str]]]:
    """``__all__``, the module ``__getattr__`` and ``__dir__`` for ``package``; ``module_of`` maps each exported
    name to the submodule that defines it."""

    def __getattr__(name: str) -> Any:
        if name == "check":
            value = __getattr__("EXERCISES").check
        elif name in module_of:
            value = getattr(importlib.import_module(f"{package}.{module_of[name]}"), name)
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        setattr(sys.modules[package], name, value)  # found once; later lookups do not come here
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *module_of, "check"})

    return [*module_of, "check"], __getattr__, __dir__
