"""The architecture as the tree shows it: components know nothing of the commands or the demo, and the demo
composes commands by running them, never by importing them."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "rlt"


def _imports(path: Path) -> set[str]:
    """Every ``rlt`` module ``path`` imports, at the top or inside a function."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("rlt"):
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names if alias.name.startswith("rlt"))
    return names


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ("commands", "cli", "demo") else "components"


def test_each_layer_imports_only_the_layers_below_it():
    allowed = {"components": {"components"}, "demo": {"components", "demo"},
               "commands": {"components", "demo", "commands"}, "cli": {"components", "cli"}}
    modules = sorted(SRC.rglob("*.py"))
    assert len(modules) > 30
    for path in modules:
        module = ".".join(("rlt", *path.relative_to(SRC).with_suffix("").parts))
        for imported in _imports(path):
            assert _layer(imported) in allowed[_layer(module)], f"{module} imports {imported}"
