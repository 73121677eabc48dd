"""Every config in configs/ parses with its command's parser: a typo fails here, not on a GPU node."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import yaml

from rlt.errors import UserError

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
CONFIG_FILES = sorted(p for p in CONFIGS.glob("*/*.yaml")
                 if p.parent.name not in ("accelerate", "baselines") and not p.stem.endswith("_budgets"))
# A config file is named after its command's module, but these.
MODULES = {"student_sft_32b": "rlt.commands.student_sft"}


@pytest.fixture(autouse=True)
def _bf16_is_allowed(monkeypatch):
    """Paper configs ask for bf16; on this CPU-only machine validate everything else."""
    monkeypatch.setattr("transformers.training_args.is_torch_bf16_gpu_available", lambda: True)


@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_config_parses(path, capsys):
    parsed = _parse(_module(path), path, capsys)
    values = yaml.safe_load(path.read_text())
    for key, value in values.items():
        owners = [p for p in parsed if hasattr(p, key)]
        assert owners, f"{path.name}: unknown key {key}"
        if key != "output_dir":
            assert _same(getattr(owners[0], key), value), (key, getattr(owners[0], key), value)


def _module(path: Path):
    return importlib.import_module(MODULES.get(path.stem, f"rlt.commands.{path.stem}"))


def _parse(module, path: Path | None, capsys, flags=()) -> tuple:
    """Parse the config (none: the command's defaults) and ``flags``; paths it leaves to the command line
    (model...) get placeholders."""
    config = ["--config", str(path)] if path is not None else []
    placeholders: list[str] = []
    for _ in range(3):  # argparse names the required flags it misses; a config's own check, the rest
        try:
            return module.parse([*config, *placeholders, *flags])
        except UserError as error:
            missing = str(error).split("the following arguments are required:")[-1].split(" (`")[0]
            required = [name.strip().split("/")[0] for name in missing.split(",")]  # "--output_dir/--output-dir"
            placeholders += [item for flag in required for item in (flag, "placeholder")]
    raise AssertionError(f"{path} does not parse with placeholders for {placeholders}")


@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_config_states_only_what_differs_from_the_defaults(path, capsys):
    """A key set to its command's default would be a second place for that default (the dataclass is the one)."""
    defaults = _parse(_module(path), None, capsys)
    repeated = [key for key, value in yaml.safe_load(path.read_text()).items()
                if _same(getattr(next(d for d in defaults if hasattr(d, key)), key), value)]
    assert not repeated, f"{path.name} repeats the defaults of {repeated}"


def _same(parsed, given) -> bool:
    parsed = getattr(parsed, "value", parsed)  # enums (lr_scheduler_type, save_strategy, ...)
    if given == "none" and parsed == []:  # report_to: none
        return True
    if isinstance(parsed, list) and not isinstance(given, list):
        return given in parsed
    return parsed == given


def test_accelerate_configs_are_valid_yaml_with_a_distributed_type():
    for path in (CONFIGS / "accelerate").glob("*.yaml"):
        config = yaml.safe_load(path.read_text())
        assert config["distributed_type"] in {"MULTI_GPU", "DEEPSPEED", "FSDP"}, path


def test_multinode_launch_config_parses_with_accelerate():
    """The 32B student's launch: accelerate's own config class and launch parser read it."""
    from accelerate.commands.config.config_args import ClusterConfig
    from accelerate.commands.launch import launch_command_parser

    path = CONFIGS / "accelerate" / "zero3_multinode.yaml"
    config = ClusterConfig.from_yaml_file(str(path))
    assert config.num_machines == 4 and config.num_processes == 8 * config.num_machines
    args = launch_command_parser().parse_args([
        "--config_file", str(path), "--machine_rank", "3", "--main_process_ip", "10.0.0.1", "-m", "rlt.cli",
        "student-sft", "--config", str(CONFIGS / "paper" / "student_sft_32b.yaml")])
    assert (args.machine_rank, args.main_process_ip, args.module) == (3, "10.0.0.1", True)
    student = yaml.safe_load((CONFIGS / "paper" / "student_sft_32b.yaml").read_text())
    assert config.num_processes * student["per_device_train_batch_size"] * student["gradient_accumulation_steps"] == 96


def test_demo_budgets_name_stages_and_parse_as_flags(capsys):
    from rlt.commands import distill, evaluate, student_rl, student_sft, teacher_rl, teacher_sft, toy
    from rlt.demo.stages import load_budget

    commands = {"teacher_sft": teacher_sft, "student_sft": student_sft, "teacher_rl": teacher_rl,
                "student_rl": student_rl, "distill": distill, "evaluate": evaluate}
    for path in (CONFIGS / "toy" / "demo_budgets.yaml", Path(__file__).parent / "data" / "demo_smoke_budgets.yaml"):
        full, quick = load_budget(False, path), load_budget(True, path)
        assert quick == {**full, "seeds": full["seeds"][:1]}
        assert set(full) <= {"seeds", "reward_buckets", "world", *commands}, path
        for name, module in commands.items():
            _parse(module, CONFIGS / "toy" / f"{name}.yaml", capsys, full.get(name, ()))
        _parse(toy, None, capsys, full.get("world", ()))


@pytest.mark.parametrize(("command", "reads"), [
    ("teacher-sft", True), ("teacher-rl", True), ("distill", True), ("student-sft", True), ("evaluate", True),
    ("score", True), ("demo", False)])
def test_every_command_speaks_one_vocabulary(command, reads, capsys):
    """`--output_dir` wherever a command writes, `--dataset` wherever it reads."""
    from rlt.cli import main

    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = capsys.readouterr().out
    assert "--output_dir" in text and ("--dataset" in text) == reads


def test_toy_init_writes_to_output_dir(capsys):
    from rlt.commands.toy import parse

    with pytest.raises(SystemExit):
        parse(["--help"])
    assert "--output_dir" in capsys.readouterr().out
