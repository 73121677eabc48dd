"""Benchmark: where a GRPO step of the toy config spends its time, with and without log-prob reuse.

Runs `rlt teacher-rl` with configs/toy/teacher_rl.yaml on a fresh toy world (its warmed-up
teacher and gold student are trained first, so completions have realistic lengths) and times each
step's parts by wrapping the trainer's methods:

* generation      – TRL's ``_generate`` (sampling the completions);
* reward          – the RLT reward, split into its teacher and student parts;
* the rest        – everything else in the step: TRL's scoring passes (old/reference log-probs),
                    the loss forward/backward and the optimiser step.

Two runs: on-policy (the toy config as is: TRL computes no policy log-probs before the reward, so
the reward runs its own teacher pass) and with ``steps_per_generation 2`` (TRL computes the policy's
log-probs for importance sampling, and the reward reuses them instead of a teacher pass). The reuse
ratio compares the reward's time per completion in the two runs. A bf16 run with TRL's log-probs
never reuses them (:func:`rlt.grpo.policy_log_probs_are_fp32`): what that costs is the on-policy
column's ``reward: teacher`` row, the fp32 teacher pass.

    python benchmarks/grpo_step.py [--steps 12] [--warmup_steps 2] [--smoke]   # --smoke: seconds, tiny
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import torch
from transformers import TrainerCallback

from rlt.cli import main as rlt
from rlt.commands.teacher_rl import parse, prepare
from rlt.toy.world import ToyWorld

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "toy"


class StepTimer:
    """Seconds spent in wrapped methods, per training step; the first steps are warm-up."""

    def __init__(self, trainer, warmup_steps: int):
        self.trainer, self.warmup_steps = trainer, warmup_steps
        self.seconds: dict[str, float] = defaultdict(float)
        self.completions = 0

    def wrap(self, owner, method: str, name: str) -> None:
        original = getattr(owner, method)

        def timed(*args, **kwargs):
            start = time.perf_counter()
            result = original(*args, **kwargs)
            if self.trainer.state.global_step >= self.warmup_steps:
                self.seconds[name] += time.perf_counter() - start
            return result

        setattr(owner, method, timed)


class WallClock(TrainerCallback):
    """Starts the clock when the first measured step begins (optimiser steps included)."""

    def __init__(self, warmup_steps: int):
        self.warmup_steps, self.start = warmup_steps, 0.0

    def on_step_begin(self, args, state, control, **kwargs):
        if state.global_step == self.warmup_steps:
            self.start = time.perf_counter()


def count_completions(trainer, timer: StepTimer) -> None:
    scored = trainer.reward.score_completions

    def counted(questions, *args, **kwargs):
        if trainer.state.global_step >= timer.warmup_steps:
            timer.completions += len(questions)
        return scored(questions, *args, **kwargs)

    trainer.reward.score_completions = counted


def train_models(root: Path, sft_steps: int) -> ToyWorld:
    """The toy world, a warmed-up teacher and a gold-explanation student (the config's inputs)."""
    world = ToyWorld(root / "world")
    rlt(["toy", "init", "--output_dir", str(world.root), "--n_train", "2000", "--n_heldout", "100",
         "--pretrain_max_steps", "0"])
    rlt(["teacher-sft", "--config", str(CONFIGS / "teacher_sft.yaml"), "--model", str(world.base_model),
         "--dataset", str(world.teacher_warmup), "--output_dir", str(root / "teacher_sft"),
         "--max_steps", str(sft_steps), "--disable_tqdm", "true"])
    rlt(["student-sft", "--config", str(CONFIGS / "student_sft.yaml"), "--model", str(world.base_model),
         "--dataset", str(world.train), "--output_dir", str(root / "student_gold"),
         "--max_steps", str(sft_steps), "--disable_tqdm", "true"])
    return world


def time_steps(root: Path, out: Path, steps: int, warmup_steps: int, *extra: str) -> dict:
    parsed = parse([
        "--config", str(CONFIGS / "teacher_rl.yaml"), "--model", str(root / "teacher_sft"),
        "--student", str(root / "student_gold"), "--dataset", str(ToyWorld(root / "world").train),
        "--output_dir", str(out), "--max_steps", str(steps), "--save_strategy", "no", "--logging_steps", "1000",
        "--disable_tqdm", "true", *extra,
    ])
    torch.manual_seed(parsed[2].seed)
    trainer = prepare(*parsed).build()
    timer = StepTimer(trainer, warmup_steps)
    timer.wrap(trainer, "_generate", "generation")
    # TRL holds the bound reward method; the reward's own methods are looked up on each call.
    timer.wrap(trainer.reward, "score_completions", "reward")
    timer.wrap(trainer.reward, "_teacher_log_probs", "reward: teacher")
    count_completions(trainer, timer)
    clock = WallClock(warmup_steps)
    trainer.add_callback(clock)
    trainer.train()
    measured = steps - warmup_steps
    wall = time.perf_counter() - clock.start
    s = timer.seconds
    return {
        "s/step": wall / measured,
        "generation": s["generation"] / measured,
        "reward": s["reward"] / measured,
        "reward: teacher": s["reward: teacher"] / measured,
        "reward: student": (s["reward"] - s["reward: teacher"]) / measured,
        "rest": (wall - s["generation"] - s["reward"]) / measured,
        "reward s/completion": s["reward"] / max(timer.completions, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--warmup_steps", type=int, default=2)
    parser.add_argument("--smoke", action="store_true", help="Tiny budgets (seconds): that the script runs.")
    args = parser.parse_args()
    if args.smoke:
        args.steps, args.warmup_steps = 2, 1
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        train_models(root, sft_steps=2 if args.smoke else 300)
        on_policy = time_steps(root, root / "a", args.steps, args.warmup_steps)
        reuse = time_steps(root, root / "b", args.steps, args.warmup_steps, "--steps_per_generation", "2")

    print(f"toy GRPO config, {torch.get_num_threads()} threads, {args.steps - args.warmup_steps} measured steps")
    print(f"{'seconds per step':<28}{'on-policy':>12}{'with reuse':>12}")
    for name in ("s/step", "generation", "reward", "reward: teacher", "reward: student", "rest"):
        print(f"{name:<28}{on_policy[name]:>12.3f}{reuse[name]:>12.3f}")
    share = on_policy["reward"] / on_policy["s/step"]
    ratio = reuse["reward s/completion"] / on_policy["reward s/completion"]
    print(f"grpo step benchmark: {on_policy['s/step']:.2f} s/step, reward share {share:.2f}, "
          f"reward time with reuse {ratio:.2f}x")


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
