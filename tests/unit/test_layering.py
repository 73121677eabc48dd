"""The architecture as the tree shows it: components know nothing of the commands or the demo, and the demo
runs commands in their own processes, importing from them only the typed outputs they write (``*Outputs``)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "rlt"


def _imports(path: Path) -> list[tuple[str, tuple[str, ...]]]:
    """Every ``rlt`` module ``path`` imports, at the top or inside a function, with the names it takes."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("rlt"):
            found.append((node.module, tuple(alias.name for alias in node.names)))
        elif isinstance(node, ast.Import):
            found += [(alias.name, ()) for alias in node.names if alias.name.startswith("rlt")]
    return found


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ("commands", "cli", "demo") else "components"


def _modules() -> list[tuple[str, Path]]:
    paths = sorted(SRC.rglob("*.py"))
    return [(".".join(("rlt", *path.relative_to(SRC).with_suffix("").parts)), path) for path in paths]


def test_each_layer_imports_only_the_layers_below_it():
    allowed = {"components": {"components"}, "demo": {"components", "demo"},
               "commands": {"components", "demo", "commands"}, "cli": {"components", "cli"}}
    modules = _modules()
    assert len(modules) > 30
    for module, path in modules:
        for imported, names in _imports(path):
            if _layer(module) == "demo" and _layer(imported) == "commands":
                assert names and all(name.endswith("Outputs") for name in names), f"{module} imports {names}"
                continue
            assert _layer(imported) in allowed[_layer(module)], f"{module} imports {imported}"


def _file_names(outputs: type) -> set[str]:
    """The name of every file or folder a typed outputs class declares."""
    from rlt.run_folder import OutputFile

    return {value.name for value in vars(outputs).values() if isinstance(value, OutputFile)}


def test_each_output_file_is_named_in_one_module():
    """Demo, report, benchmarks and tests reach a command's files through its typed outputs, never by name."""
    from rlt.commands.distill import DistillOutputs
    from rlt.commands.evaluate import EvaluateOutputs
    from rlt.commands.score import ScoreOutputs
    from rlt.commands.toy import GradedOutputs
    from rlt.demo.report import ReportFiles
    from rlt.run_folder import LOCK, RUN_INFO
    from rlt.toy.world import FILES, MANIFEST
    from rlt.training import TrainingOutputs

    names = {LOCK, RUN_INFO, MANIFEST, *(Path(path).name for path in FILES.values())}
    for outputs in (DistillOutputs, EvaluateOutputs, ScoreOutputs, GradedOutputs, ReportFiles, TrainingOutputs):
        names |= _file_names(outputs)
    assert {"distilled.jsonl", "results.jsonl", "scored.jsonl", "metrics.jsonl", "summary.md"} <= names
    sources = {module: path.read_text() for module, path in _modules()}
    for name in sorted(n for n in names if "." in n):  # files (a folder's name, base_model, is also a field's)
        spelled = [module for module, text in sources.items() if name in text]
        assert len(spelled) == 1, f"{name} is spelled in {spelled}"


def test_components_take_plain_values_not_command_line_options():
    """Option dataclasses and parsers belong to the commands: a component that parsed flags or took a command's
    arguments could not be called from Python without building a command line."""
    for module, path in _modules():
        if _layer(module) != "components":
            continue
        source = ast.parse(path.read_text())
        imported = {alias.name.split(".")[0] for node in ast.walk(source) if isinstance(node, ast.Import)
                    for alias in node.names}
        imported |= {node.module.split(".")[0] for node in ast.walk(source)
                     if isinstance(node, ast.ImportFrom) and node.module}
        names = {alias.name for node in ast.walk(source) if isinstance(node, ast.ImportFrom) for alias in node.names}
        assert "argparse" not in imported, module
        assert not names & {"TrlParser", "HfArgumentParser", "DataArguments", "InferenceArguments"}, module
