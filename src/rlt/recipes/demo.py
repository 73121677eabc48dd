"""``rlt demo``: the paper's claim in miniature, offline on a CPU.

    rlt demo [--quick true] [--output runs/demo]

For each seed, on the toy world (multi-operand addition, tiny local models):

1. build the world (its base model pretrained on addition facts, the stand-in for a pretrained LM,
   once: the other seeds share the first seed's);
   train a student on gold explanations (the upper bound, and the reward's judge)
   and one on answers alone (the lower bound);
2. warm up a teacher on explanations that often just state the answer it was shown (an imperfect teacher);
3. train it with GRPO on the RLT reward, the gold student judging;
4. let the warm-up teacher and the RL teacher each explain the training questions (scored by the
   reward: its mean before and after RL), and train a fresh student on each teacher's explanations;
5. evaluate the four students on held-out questions.

Every stage is the ``rlt`` command a user would run (``report/commands.sh``), run by
:mod:`rlt.pipeline`: two at a time where they are independent, skipped when a killed demo is
started again. The report folder holds ``summary.md``, ``summary.json``, plots, explanations
before and after RL, and the stages' times and peak memory (``stages.json``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from rlt.config import parse_command, recipes_dir, setup_logging
from rlt.pipeline import Pipeline, Stage
from rlt.report import write_report

logger = logging.getLogger(__name__)



@dataclass
class DemoArguments:
    output: str = field(default="runs/demo", metadata={"help": "Report and run folder."})
    quick: bool = field(default=False, metadata={
        "help": "Seed 0 alone, the full demo's first seed (10 to 13 minutes on 2 cores)."})
    workers: int = field(default=2, metadata={
        "help": "Stages run at once (each gets cores / workers threads; one that runs alone gets every core)."})
    budgets: str | None = field(
        default=None, metadata={"help": "YAML of per-stage flags (default: the shipped configs/toy/demo_budgets.yaml)."}
    )


def seed_stages(seed: int, root: Path, budget: dict, recipes: Path, base_seed: int | None = None) -> list[Stage]:
    """The pipeline of one seed: world → students, teacher → RL → explanations → students → evaluation.

    With ``base_seed`` (another seed of the same run), the world copies that seed's pretrained base model
    instead of pretraining its own: the demo's seeds share one base, as the paper's runs all start from
    one Qwen2.5-7B-Instruct, and a seed draws its own data and trains its own models."""
    run, world = root / f"seed{seed}", root / f"seed{seed}" / "world"
    base, train = str(world / "base_model"), str(world / "data" / "train.jsonl")
    name = f"seed{seed}/{{}}".format

    def recipe(command: str, stage: str, needs: Sequence[str], description: str, *argv: object) -> Stage:
        flags = ["--config", str(recipes / f"{command.replace('-', '_')}.yaml"), *map(str, argv), "--seed", str(seed)]
        return Stage(name(stage), (command, *flags, *budget[command.replace("-", "_")]),
                     tuple(name(n) for n in needs), description)

    def student(kind: str, dataset: str, needs: Sequence[str]) -> list[Stage]:
        return [
            recipe("student-sft", f"student_{kind}", needs, f"student on {kind.replace('_', ' ')} explanations",
                   "--model", base, "--dataset", dataset, "--output_dir", run / f"student_{kind}",
                   "--disable_tqdm", "true"),
            recipe("evaluate", f"eval_{kind}", [f"student_{kind}"], f"held-out accuracy ({kind})",
                   "--model", run / f"student_{kind}", "--dataset", world / "data" / "heldout.jsonl",
                   "--output_dir", run / f"eval_{kind}"),
        ]

    def explanations(teacher: str, needs: Sequence[str]) -> Stage:
        return recipe("distill", f"distill_{teacher}", needs, f"{teacher.replace('_', ' ')} explains",
                      "--teacher", run / teacher, "--dataset", train, "--output_dir", run / f"distill_{teacher}",
                      "--best_of_k_student", run / "student_gold")

    world_argv = ("toy", "init", "--config", str(recipes / "world.yaml"), "--output", str(world),
                  "--seed", str(seed), *budget["world"])
    if base_seed in (None, seed):
        world_stage = Stage(name("world"), world_argv, (), "toy world")
    else:
        shared_base = root / f"seed{base_seed}" / "world" / "base_model"
        world_stage = Stage(name("world"), (*world_argv, "--base_model", str(shared_base)), (f"seed{base_seed}/world",),
                            f"toy world (seed {base_seed}'s base model)")
    # Listed so that the critical path (judge and warm-up → RL → explanations → student) starts first.
    return [
        world_stage,
        *student("gold", train, ["world"]),
        recipe("teacher-sft", "teacher_sft", ["world"], "teacher warm-up", "--model", base,
               "--dataset", world / "data" / "teacher_warmup.jsonl", "--output_dir", run / "teacher_sft",
               "--disable_tqdm", "true"),
        recipe("teacher-rl", "teacher_rl", ["teacher_sft", "student_gold"], "GRPO on the RLT reward",
               "--model", run / "teacher_sft", "--student", run / "student_gold", "--dataset", train,
               "--output_dir", run / "teacher_rl", "--disable_tqdm", "true"),
        explanations("teacher_sft", ["teacher_sft", "student_gold"]),
        explanations("teacher_rl", ["teacher_rl"]),
        *student("answer_only", str(world / "data" / "answer_only.jsonl"), ["world"]),
        *student("warmup_teacher", str(run / "distill_teacher_sft" / "distilled.jsonl"), ["distill_teacher_sft"]),
        *student("rl_teacher", str(run / "distill_teacher_rl" / "distilled.jsonl"), ["distill_teacher_rl"]),
    ]


def run(args: DemoArguments) -> dict:
    started = time.perf_counter()
    root = Path(args.output)
    recipes = recipes_dir() / "toy"
    budgets = yaml.safe_load(Path(args.budgets or recipes / "demo_budgets.yaml").read_text())
    budget = budgets["quick" if args.quick else "full"]

    # Stages of every seed, run two at a time where independent
    seeds = budget["seeds"]
    stages = [stage for seed in seeds for stage in seed_stages(seed, root, budget, recipes, base_seed=seeds[0])]
    results = Pipeline(stages, root / "logs", workers=args.workers).run()

    # Report
    summary = write_report(root, budget["seeds"], stages, results, wall_seconds=time.perf_counter() - started)
    logger.info("report: %s", root / "report" / "summary.md")
    return summary


def parse(argv: Sequence[str] | None) -> tuple[DemoArguments]:
    return parse_command(argv, [DemoArguments], "demo", __doc__.split("\n\n")[0])


def main(argv: Sequence[str] | None = None) -> int:
    setup_logging()
    (args,) = parse(argv)
    run(args)
    return 0
