"""The layout holds: arrows point labs -> diagnostics -> model, only labs and widgets draw, no import cycle."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "xtlab"
DRAWING = ("ipywidgets", "matplotlib", "IPython")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def imports_of(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def layer(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else ""


# which layers each layer may import from (besides itself and the top-level helpers)
ALLOWED = {
    "model": set(),
    "diagnostics": {"model"},
    "course": set(),
    "widgets": {"course"},  # a widget draws what the course decides (a commitment, a verdict)
    "data": set(),
    "labs": {"model", "diagnostics", "course", "widgets", "data"},
}
TOP_LEVEL = {"xtlab", "xtlab._checks", "xtlab.device", "xtlab.seeding", "xtlab.threads", "xtlab.training",
             "xtlab.catalog"}


@pytest.mark.parametrize("name", sorted(MODULES))
def test_arrows_point_one_way(name):
    own = layer(name)
    if own not in ALLOWED:
        return  # the top-level helpers
    for target in imports_of(MODULES[name]):
        if not target.startswith("xtlab.") or target in TOP_LEVEL or target.startswith("xtlab._checks"):
            continue
        target_layer = layer(target)
        if target_layer in ("device", "seeding", "threads", "training", "catalog", "_checks"):
            continue
        assert target_layer == own or target_layer in ALLOWED[own], f"{name} imports {target}"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_only_labs_and_widgets_import_drawing_libraries(name):
    if layer(name) in ("labs", "widgets"):
        return
    drawing = [target for target in imports_of(MODULES[name]) if target.split(".")[0] in DRAWING]
    assert drawing == [], f"{name} imports {drawing}"


def test_no_import_cycle_between_modules():
    graph = {name: {target for target in imports_of(path) if target in MODULES} - {name}
             for name, path in MODULES.items()}
    state: dict[str, int] = {}

    def visit(name, trail):
        state[name] = 1
        for target in graph[name]:
            # a package importing its own submodules is how packages re-export, not a cycle
            if target.startswith(name + "."):
                continue
            if state.get(target) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*trail, name, target]))
            if target not in state:
                visit(target, [*trail, name])
        state[name] = 2

    for name in graph:
        if name not in state:
            visit(name, [])


def test_old_folders_are_gone():
    for old in ("viz", "experiments", "exercises"):
        assert not (PACKAGE / old).exists()
    assert not (PACKAGE / "model" / "checks.py").exists() and not (PACKAGE / "diagnostics" / "checks.py").exists()
