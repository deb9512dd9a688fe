"""The layers of docs/architecture.md: components import the core, never each other nor the command line."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "ddserver"
COMPONENTS = ("interface", "updater", "recursor", "rfc2136")
#: Modules above the components: they may import any of them, none of them may import these.
TOP = ("cli", "quickstart", "bundle")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


@pytest.mark.parametrize("component", COMPONENTS)
def test_a_component_imports_the_core_only(component):
    others = [f"ddserver.{name}" for name in (*COMPONENTS, *TOP) if name != component]
    wrong = []
    for path in sorted((PACKAGE / component).rglob("*.py")):
        for name in _imports(path):
            if any(name == other or name.startswith(other + ".") for other in others):
                wrong.append(f"{path.relative_to(PACKAGE.parent)}: {name}")
    assert wrong == []


def test_the_core_imports_no_component():
    above = [f"ddserver.{name}" for name in (*COMPONENTS, *TOP)]
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        part = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        if part in COMPONENTS or part in TOP:
            continue
        for name in _imports(path):
            if any(name == other or name.startswith(other + ".") for other in above):
                wrong.append(f"{path.relative_to(PACKAGE.parent)}: {name}")
    assert wrong == []


def test_the_store_holds_its_row_types_itself():
    """The DNS core may use the store's row types, never the other way round."""
    wrong = [
        f"{path.relative_to(PACKAGE.parent)}: {name}"
        for path in sorted((PACKAGE / "store").rglob("*.py"))
        for name in _imports(path)
        if name == "ddserver.dns" or name.startswith("ddserver.dns.")
    ]
    assert wrong == []
