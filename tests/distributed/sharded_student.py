"""Run by torchrun (2 processes, gloo) from tests/commands/test_sharded.py: the RLT reward with the student
sharded by FSDP2 as configs/accelerate/fsdp.yaml shards it (each decoder layer, then the root; parameters
resharded after each forward), against the unsharded student, and a few teacher-rl steps with it.

accelerate turns FSDP on only for accelerators (its MULTI_CPU type has no FSDP), so on a CPU the student is
sharded here with torch's own ``fully_shard``, the function accelerate's FSDP2 path applies.

    torchrun --standalone --nproc_per_node 2 tests/distributed/sharded_student.py MODELS ROWS OUT
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from torch.distributed.fsdp import fully_shard


def shard(model: torch.nn.Module) -> torch.nn.Module:
    """TRANSFORMER_BASED_WRAP over the model's own unsplittable blocks, then the root."""
    blocks = tuple(model._no_split_modules)
    for module in model.modules():
        if type(module).__name__ in blocks:
            fully_shard(module, reshard_after_forward=True)
    fully_shard(model, reshard_after_forward=True)
    return model


def main(models: Path, rows: Path, out: Path) -> None:
    from rlt.commands.teacher_rl import parse, prepare
    from rlt.formats import FormatConfig
    from rlt.modeling import load_causal_lm, load_tokenizer
    from rlt.reward import RewardConfig, RLTReward

    argv = ["--model", str(models / "teacher"), "--student", str(models / "student"), "--dataset", str(rows),
            "--output_dir", str(out / "rl"), "--per_device_train_batch_size", "8", "--num_generations", "4",
            "--max_completion_length", "12", "--teacher_system_prompt", "Explain.", "--student_system_prompt",
            "Think.", "--report_to", "none", "--max_steps", "2", "--logging_steps", "1", "--save_strategy", "no",
            "--disable_tqdm", "true", "--learning_rate", "1e-3"]
    parsed = parse(argv)
    trainer = prepare(*parsed).build()  # two processes in one gloo group (use_cpu)
    rank = dist.get_rank()
    assert dist.get_world_size() == 2

    # The same rows scored by the unsharded and the sharded student; the ranks hold different numbers of rows,
    # cut in different numbers of micro-batches (every pass of a sharded model is a collective).
    tokenizer = load_tokenizer(str(models / "teacher"))
    fmt = FormatConfig(teacher_system_prompt="Explain.", student_system_prompt="Think.")
    teacher = load_causal_lm(str(models / "teacher"), "float32", "cpu", frozen=True)
    student = load_causal_lm(str(models / "student"), "float32", "cpu", frozen=True)
    count = 3 + 4 * rank
    questions = [f"What is {10 * rank + i}+{i}?" for i in range(count)]
    solutions = [str(10 * rank + 2 * i) for i in range(count)]
    explanations = [f"{10 * rank + i}+{i}=" * (1 + i) for i in range(count)]
    config = RewardConfig(max_batch_tokens=96)
    whole = RLTReward(teacher, student, tokenizer, config, fmt).score_texts(questions, solutions, explanations)
    sharded = RLTReward(teacher, shard(student), tokenizer, config, fmt)
    split = sharded.score_texts(questions, solutions, explanations)
    gap = max(abs(a.reward - b.reward) for a, b in zip(whole, split))

    # teacher-rl with its student sharded: each process scores its own completions
    trainer.student = shard(trainer.student)
    trainer.reward = RLTReward(trainer.reward.teacher, trainer.student, tokenizer, trainer.reward.config,
                               trainer.reward.builder.fmt)
    trainer.train()
    rewards = [entry["rlt/reward"] for entry in trainer.state.log_history if "rlt/reward" in entry]
    (out / f"rank{rank}.json").write_text(json.dumps({"max_reward_gap": gap, "lockstep": sharded.lockstep,
                                                      "rows": count, "rewards": rewards}))
    dist.barrier()


if __name__ == "__main__":
    main(*map(Path, sys.argv[1:]))
