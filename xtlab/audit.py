"""``xtlab.audit``: the report card of a model, from Python or from a shell.

From Python, ``xtlab.audit(model)`` (or ``xtlab.audit(model, adapter)``) returns a
:class:`~xtlab.diagnostics.model_audit.ReportCard`; this module is callable, so that works whether ``xtlab.audit``
names the function or this module.

From a shell (CI-friendly: the exit status is 0 when every row holds, 1 when a row fails, 2 when a row could not
run; ``--allow-missing`` lets rows run without a hook the adapter does not give count as holding)::

    python -m xtlab.audit mypackage.models:build_model [--adapter mypackage.models:adapter_for]
                          [--report card.md | card.html] [--seed 0] [--steps 8] [--no-ddp] [--allow-missing]

``module:factory`` names a function of no arguments that returns the model (or a class); ``--adapter`` names a
:class:`~xtlab.diagnostics.model_audit.ModelAdapter` or a function ``adapter(model) -> ModelAdapter`` (default: the
ready adapter for the model's class). The factory is passed as ``build`` for the DDP row, so a model that does not
pickle still gets it.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import types
from collections.abc import Sequence

from torch import nn

from xtlab.diagnostics.model_audit import COULD_NOT_RUN, FAILS, MISSING_CAPABILITY, ModelAdapter, ReportCard, audit

EXIT_HOLDS, EXIT_FAILS, EXIT_COULD_NOT_RUN, EXIT_USAGE = 0, 1, 2, 3


def load_object(spec: str, what: str) -> object:
    """The object ``module:name`` (``name`` may be dotted) names.

    Raises:
        ValueError: ``spec`` is not ``module:name``, or the module or name does not exist (the message says which).
    """
    module_name, colon, attribute = spec.partition(":")
    if not colon or not module_name or not attribute:
        raise ValueError(f"{what} must be written module:name (e.g. mypackage.models:build_model), but got {spec!r}")
    try:
        target = importlib.import_module(module_name)
    except ImportError as err:
        raise ValueError(f"{what} {spec!r}: cannot import module {module_name!r} ({err})") from err
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise ValueError(f"{what} {spec!r}: {module_name} has no attribute {attribute!r}")
        target = getattr(target, part)
    return target


def exit_status(card: ReportCard, allow_missing: bool = False) -> int:
    """0 when every row holds, 1 when a row fails, else 2 when a row could not run (with ``allow_missing``, rows
    that could not run only for a missing capability do not count)."""
    if card.count(FAILS):
        return EXIT_FAILS
    blocking = [row for row in card.rows if row.status == COULD_NOT_RUN
                and not (allow_missing and row.reason == MISSING_CAPABILITY)]
    return EXIT_COULD_NOT_RUN if blocking else EXIT_HOLDS


def write_report(card: ReportCard, path: str) -> None:
    """The card as Markdown (``.md``) or HTML (``.html``/``.htm``), with the evidence of each row."""
    if path.endswith((".html", ".htm")):
        text = card.html_document()
    elif path.endswith(".md"):
        text = card.markdown()
    else:
        raise ValueError(f"--report must end in .md, .html or .htm, but got {path!r}")
    with open(path, "w", encoding="utf-8") as file:
        file.write(text)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m xtlab.audit", description="The report card of a model: every "
                                     "instrument and invariant of the xtlab course, measured on it.")
    parser.add_argument("factory", help="module:function returning the model (a function of no arguments)")
    parser.add_argument("--adapter", help="module:name of a ModelAdapter, or of a function model -> ModelAdapter")
    parser.add_argument("--report", help="write the card to this .md or .html file")
    parser.add_argument("--name", help="the card's title (default: the model's class name)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--no-ddp", action="store_true", help="leave out the 2-process DDP row")
    parser.add_argument("--allow-missing", action="store_true",
                        help="rows that could not run only because a hook is missing do not make the exit status "
                             "non-zero")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The shell entry point; returns the exit status."""
    options = _parser().parse_args(argv)
    try:
        if options.report and not options.report.endswith((".md", ".html", ".htm")):
            raise ValueError(f"--report must end in .md, .html or .htm, but got {options.report!r}")
        factory = load_object(options.factory, "the model factory")
        if not callable(factory):
            raise ValueError(f"the model factory {options.factory!r} must be callable, but is "
                             f"{type(factory).__name__}")
        model = factory()
        if not isinstance(model, nn.Module):
            raise ValueError(f"the model factory {options.factory!r} must return a torch.nn.Module, but returned "
                             f"{type(model).__name__}")
        adapter = None
        if options.adapter:
            adapter = load_object(options.adapter, "--adapter")
            if not isinstance(adapter, ModelAdapter):
                adapter = adapter(model) if callable(adapter) else adapter
            if not isinstance(adapter, ModelAdapter):
                raise ValueError(f"--adapter {options.adapter!r} must be a ModelAdapter or a function model -> "
                                 f"ModelAdapter, but gave {type(adapter).__name__}")
        card = audit(model, adapter, name=options.name, build=factory, seed=options.seed, steps=options.steps,
                     ddp=not options.no_ddp)
        if options.report:
            write_report(card, options.report)
    except (ValueError, TypeError) as err:
        print(f"xtlab.audit: {err}", file=sys.stderr)
        return EXIT_USAGE
    print(card)
    if options.report:
        print(f"report written to {options.report}")
    return exit_status(card, options.allow_missing)


class _CallableModule(types.ModuleType):
    """``xtlab.audit(model, ...)`` calls :func:`audit` even once this module has replaced the function as the
    package attribute (importing a submodule sets the attribute of the same name)."""

    def __call__(self, *args, **kwargs) -> ReportCard:
        return audit(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule

if __name__ == "__main__":
    sys.exit(main())
