"""Every lab's panels, found by name: the functions ending in ``_panel`` that take no required argument.

Benchmarks drive them and tests check them all, so a panel a lab adds is measured and checked without being
listed anywhere.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import warnings
from collections.abc import Callable
from types import ModuleType
from typing import Any


def panel_factories(package: ModuleType | None = None, *, skip_broken: bool = False) -> dict[str, Callable[[], Any]]:
    """``"module.function"`` (relative to ``package``, default ``xtlab.labs``) -> factory, for every ``*_panel``
    function defined in a module of ``package`` and callable without arguments.

    Args:
        skip_broken: warn about and skip a module that fails to import (a benchmark run while a lab is being
            written) instead of raising.
    """
    if package is None:
        import xtlab.labs as package
    factories = {}
    for info in pkgutil.walk_packages(package.__path__, prefix=package.__name__ + "."):
        try:
            module = importlib.import_module(info.name)
        except Exception as err:
            if not skip_broken:
                raise
            warnings.warn(f"skipping {info.name}: import failed with {type(err).__name__}: {err}", stacklevel=2)
            continue
        for name, function in inspect.getmembers(module, inspect.isfunction):
            if not name.endswith("_panel") or function.__module__ != module.__name__:
                continue
            required = [p for p in inspect.signature(function).parameters.values()
                        if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
            if not required:
                factories[f"{info.name.removeprefix(package.__name__ + '.')}.{name}"] = function
    return factories
