"""Every call of the audit that lab 06 and the audit's docstrings show names something that exists and can be
called: ``xtlab.audit(model)`` works whether ``xtlab.audit`` is the function or the (callable) module behind
``python -m xtlab.audit``, and nothing shows the old ``xtlab.diagnostics.model_audit(model)``."""

import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import pytest

import xtlab.diagnostics.model_audit as model_audit
import xtlab.labs.audit as lab_package
from tests.diagnostics.audit_models import Head, head_adapter

ROOT = Path(__file__).resolve().parents[2]
CALL = re.compile(r"\b(xtlab(?:\.\w+)+)\(")
SHELL = re.compile(r"python -m ([\w.]+)")


def _docstrings_of(package) -> list[str]:
    texts = [package.__doc__ or ""]
    for info in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
        module = importlib.import_module(info.name)
        texts.append(module.__doc__ or "")
        for _, member in inspect.getmembers(module, lambda m: inspect.isfunction(m) or inspect.isclass(m)):
            if member.__module__ == module.__name__:
                texts.append(member.__doc__ or "")
                texts += [method.__doc__ or "" for _, method in inspect.getmembers(member, inspect.isfunction)]
    return texts


def _shown_texts() -> dict[str, str]:
    import xtlab.audit as entry

    texts = {"notebooks/src/06_audit.py": (ROOT / "notebooks" / "src" / "06_audit.py").read_text(),
             "xtlab/audit.py": entry.__doc__ or ""}
    for package in (model_audit, lab_package):
        texts[package.__name__] = "\n".join(_docstrings_of(package))
    return texts


def _resolve(dotted: str):
    parts = dotted.split(".")
    target = importlib.import_module(parts[0])
    for index, part in enumerate(parts[1:], start=1):
        if not hasattr(target, part):
            target = importlib.import_module(".".join(parts[: index + 1]))
        else:
            target = getattr(target, part)
    return target


SHOWN = _shown_texts()
CALLS = sorted({(where, name) for where, text in SHOWN.items() for name in CALL.findall(text)})


def test_the_notebook_and_the_docstrings_show_the_entry_point():
    assert {name for _, name in CALLS} >= {"xtlab.audit"}
    assert any("python -m xtlab.audit" in text for text in SHOWN.values())
    for where, text in SHOWN.items():
        assert "xtlab.diagnostics.model_audit(" not in text, where


@pytest.mark.parametrize(("where", "name"), CALLS, ids=[f"{w}:{n}" for w, n in CALLS])
def test_every_shown_call_is_callable(where, name):
    assert callable(_resolve(name)), f"{where} shows {name}(...), which is not callable"


def test_every_shown_shell_command_names_a_runnable_module():
    for text in SHOWN.values():
        for module in SHELL.findall(text):
            spec = importlib.util.find_spec(module)
            assert spec is not None and spec.origin.endswith(".py"), module


def test_xtlab_audit_is_callable_as_the_function_and_as_the_module():
    from xtlab import audit as function

    card = function(Head(tie=True), head_adapter(), ddp=False, steps=2)
    import xtlab.audit  # noqa: F401  (the submodule now stands where the function stood)

    again = xtlab.audit(Head(tie=True), head_adapter(), ddp=False, steps=2)
    assert callable(xtlab.audit) and repr(again) == repr(card)
