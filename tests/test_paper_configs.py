"""Every paper config (configs/paper/*.yaml) runs through its command, on Qwen2.5's real tokenizer with tiny
random Qwen2.5-shaped models: a wrong key or an incompatible combination fails here, not on a GPU node.

Only paths, steps, lengths and device settings are overridden; every other key is the config's own.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import SHARED_DATA

from rlt.cli import main as rlt
from rlt.data import load_examples
from rlt.formats import FormatConfig

PAPER = Path(__file__).resolve().parents[1] / "configs" / "paper"
SKY_T1 = next(iter(sorted((SHARED_DATA / "reasoning_traces_sky_t1").rglob("*.jsonl"))), None)
MATH500 = SHARED_DATA / "math500" / "test.jsonl"

# What this CPU cannot run, overridden wherever a config sets it: bf16 (a CPU has no bf16 autocast for TRL) and
# vLLM (a GPU engine, not installed here): generation falls back to transformers in fp32. ZeRO-3 lives in the
# accelerate launch config (configs/accelerate/zero3.yaml), not in these configs. TensorBoard logging is not
# installed here either.
CPU_OVERRIDES = {"bf16": "false", "use_vllm": "false", "backend": "transformers", "dtype": "float32",
                 "report_to": "none"}
# Steps and lengths, CPU-sized: one optimiser step, 16 generated tokens, two rows to generate for.
SIZE_OVERRIDES = {"max_steps": "1", "max_completion_length": "16", "max_new_tokens": "16"}
# The RL step is shrunk too, to 4 completions of one prompt per process, whatever the config says (student_rl.yaml
# leaves the batch to TRL's default of 8 prompts): the paper's step takes 21 minutes on 2 CPU cores with these tiny
# models (measured); test_configs.py builds its GRPOConfig whole, so TRL's checks of that geometry run there.
RL_STEP = {"num_generations": "4", "gradient_accumulation_steps": "4", "per_device_train_batch_size": "1"}
COMMANDS = {"teacher_sft": "teacher-sft", "teacher_rl": "teacher-rl", "distill": "distill",
            "student_sft": "student-sft", "evaluate": "evaluate", "student_rl": "student-rl"}

pytestmark = pytest.mark.skipif(SKY_T1 is None or not MATH500.exists(), reason="needs ../shared/data")


def command_of(config: Path) -> str:
    """A config is named after its command, optionally with a suffix (``student_sft_32b``)."""
    return next(command for stem, command in COMMANDS.items()
                if config.stem == stem or config.stem.startswith(stem + "_"))


@pytest.fixture(scope="module")
def stratos_rows(tmp_path_factory) -> Path:
    """Bespoke-Stratos-17k's schema (what the configs name on the hub), with real Sky-T1 traces cut to a
    CPU-sized 600 characters."""
    fmt = FormatConfig()
    examples = load_examples(SKY_T1, limit=4, on_error="skip", require_trace=True).items
    rows = [{"system": fmt.student_system_prompt, "conversations": [
        {"from": "user", "value": e.question},
        {"from": "assistant", "value": fmt.student_answer(e.reasoning_trace[:600], e.solution)}]} for e in examples]
    path = tmp_path_factory.mktemp("stratos") / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _overrides(config: Path, paths: dict[str, Path]) -> list[str]:
    keys = yaml.safe_load(config.read_text())
    chosen = {**{k: str(v) for k, v in paths.items()},
              **{k: v for k, v in {**CPU_OVERRIDES, **SIZE_OVERRIDES}.items() if k in keys or k == "max_steps"}}
    if command_of(config) in ("teacher-rl", "student-rl"):
        chosen.update(RL_STEP)
    if command_of(config) in ("distill", "evaluate"):
        chosen.pop("max_steps")
        chosen["limit"] = "2"
    return [item for key, value in chosen.items() for item in (f"--{key}", value)]


@pytest.mark.parametrize("config", sorted(PAPER.glob("*.yaml")), ids=lambda p: p.name)
def test_paper_config_runs(config, qwen_models, stratos_rows, tmp_path):
    command = command_of(config)
    out = tmp_path / "out"
    paths = {
        "teacher-sft": {"model": qwen_models / "teacher", "dataset": stratos_rows},
        "teacher-rl": {"model": qwen_models / "teacher", "student": qwen_models / "student", "dataset": stratos_rows},
        "distill": {"teacher": qwen_models / "teacher", "dataset": stratos_rows},
        "student-sft": {"model": qwen_models / "student", "dataset": stratos_rows},
        "student-rl": {"model": qwen_models / "student", "dataset": MATH500},
        "evaluate": {"model": qwen_models / "student", "dataset": MATH500},
    }[command]
    assert rlt([command, "--config", str(config), *_overrides(config, {**paths, "output_dir": out})]) == 0
    info = json.loads(next(out.glob("*run.json")).read_text())
    assert info["command"] == command
