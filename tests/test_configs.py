"""Every recipe in configs/ parses with its command's parser: a typo fails here, not on a GPU node."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import yaml

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
RECIPES = sorted(p for p in CONFIGS.glob("*/*.yaml")
                 if p.parent.name != "accelerate" and not p.stem.endswith("_budgets"))
# A recipe file is named after its command's module.
MODULES = {"world": "rlt.recipes.toy"}


@pytest.fixture(autouse=True)
def _bf16_is_allowed(monkeypatch):
    """Paper recipes ask for bf16; on this CPU-only machine validate everything else."""
    monkeypatch.setattr("transformers.training_args.is_torch_bf16_gpu_available", lambda: True)


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_recipe_parses(path, capsys):
    module = importlib.import_module(MODULES.get(path.stem, f"rlt.recipes.{path.stem}"))
    parsed = _parse(module, path, capsys)
    values = yaml.safe_load(path.read_text())
    for key, value in values.items():
        owners = [p for p in parsed if hasattr(p, key)]
        assert owners, f"{path.name}: unknown key {key}"
        if key != "output_dir":
            assert _same(getattr(owners[0], key), value), (key, getattr(owners[0], key), value)


def _parse(module, path, capsys, flags=()) -> tuple:
    """Parse the recipe (and ``flags``); paths it leaves to the command line (model...) get placeholders."""
    try:
        return module.parse(["--config", str(path), *flags])
    except SystemExit:
        missing = capsys.readouterr().err.split("the following arguments are required:")[-1]
        required = [name.strip().split("/")[0] for name in missing.split(",")]  # "--output_dir/--output-dir"
        placeholders = [item for flag in required for item in (flag, "placeholder")]
        return module.parse(["--config", str(path), *placeholders, *flags])


def _same(parsed, given) -> bool:
    parsed = getattr(parsed, "value", parsed)  # enums (lr_scheduler_type, save_strategy, ...)
    if given == "none" and parsed == []:  # report_to: none
        return True
    if isinstance(parsed, list) and not isinstance(given, list):
        return given in parsed
    return parsed == given


def test_toy_recipes_share_one_format():
    """The toy teacher and student must see the same prompts in every stage."""
    formats = {p.name: {k: v for k, v in yaml.safe_load(p.read_text()).items() if k.endswith("system_prompt")}
               for p in (CONFIGS / "toy").glob("*.yaml") if p.stem != "world"}
    prompts = {(f.get("teacher_system_prompt"), f.get("student_system_prompt")) for f in formats.values()
               if len(f) == 2}
    assert len(prompts) == 1, formats


def test_accelerate_configs_are_valid_yaml_with_a_distributed_type():
    for path in (CONFIGS / "accelerate").glob("*.yaml"):
        config = yaml.safe_load(path.read_text())
        assert config["distributed_type"] in {"MULTI_GPU", "DEEPSPEED", "FSDP"}, path


def test_demo_budgets_name_every_stage_and_parse_as_flags(capsys):
    from rlt.recipes import distill, evaluate, student_sft, teacher_rl, teacher_sft, toy

    budgets = yaml.safe_load((CONFIGS / "toy" / "demo_budgets.yaml").read_text())
    assert set(budgets) == {"full", "quick"}
    commands = {"teacher_sft": teacher_sft, "student_sft": student_sft, "teacher_rl": teacher_rl,
                "distill": distill, "evaluate": evaluate, "world": toy}
    for profile in budgets.values():
        assert profile["seeds"] and set(profile) == {"seeds", *commands}
        for name, module in commands.items():
            _parse(module, CONFIGS / "toy" / f"{name}.yaml", capsys, profile[name])
