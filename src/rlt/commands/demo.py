"""``rlt demo``: the paper's claim in miniature, offline on a CPU.

    rlt demo [--quick true] [--cold_start true] [--transfer true] [--reward_outcome true|false] [--output_dir DIR]

For each seed, on the toy world (multi-operand addition, tiny local models):

1. build the world (its base model pretrained on addition facts, the stand-in for a pretrained LM,
   once: the other seeds share the first seed's);
   train a student on gold explanations (the upper bound, and the reward's judge)
   and one on answers alone (the lower bound);
2. warm up a teacher on explanations that often just state the answer it was shown (an imperfect teacher);
3. train it with GRPO on the RLT reward, the gold student judging;
4. let the warm-up teacher and the RL teacher each explain the training questions (scored by the
   reward: its mean before and after RL), and train a fresh student on each teacher's explanations;
5. evaluate the four students on held-out questions;
6. with ``--cold_start true``, the paper's cold start: ordinary RL (``rlt student-rl``, exact-answer
   reward, the same budget for both) from the warm-up-teacher and the RL-teacher students, evaluated too;
7. with ``--transfer true``, zero-shot transfer: the teachers (trained on additions only) explain questions
   of the same frame that subtract (``a+b-c``, the base model pretrained on subtraction facts too), students
   are distilled from each and from answers alone, and evaluated on that task;
8. with ``--reward_outcome`` (on by default in the full demo, off in the quick one), reward against outcome:
   explanations of graded quality and both teachers' own, cut by RLT reward into buckets, a student distilled
   from each, and the Spearman correlation of a bucket's mean reward with its student's accuracy.

Every stage is the ``rlt`` command a user would run (listed in the report), run by
:mod:`rlt.demo.pipeline`: two at a time where they are independent, skipped when a killed demo is
started again. The report folder (:class:`rlt.demo.report.ReportFiles`) holds the summary in markdown
and JSON, plots, explanations before and after RL, the stages' commands, times and peak memory.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rlt.commands.arguments import overwrite_option
from rlt.commands.parsing import configs_dir, parse_command, setup_logging
from rlt.demo.pipeline import Pipeline
from rlt.demo.report import (
    ReportFiles,
    accuracy_table,
    cold_start_table,
    reward_outcome_table,
    transfer_table,
    write_report,
)
from rlt.demo.stages import (
    DemoOutputs,
    cold_start_stages,
    for_transfer,
    load_budget,
    reward_outcome_stages,
    seed_stages,
    transfer_stages,
)
from rlt.run_folder import RunFolder, settings

logger = logging.getLogger(__name__)

# The transfer task of --transfer: the same three-operand frame, asking a+b-c (rlt.demo.stages.SHIFTS).
TRANSFER_SHIFT = "subtraction"


@dataclass
class DemoArguments:
    output_dir: str = field(default="runs/demo", metadata={"help": "Report and run folder."})
    quick: bool = field(default=False, metadata={
        "help": "Seed 0 alone: the full demo's first seed."})
    cold_start: bool = field(default=False, metadata={
        "help": "Also run student-rl from the warm-up- and RL-teacher students (the paper's cold start) and "
                "report their accuracy before and after."})
    transfer: bool = field(default=False, metadata={
        "help": "Also let both teachers explain a task they never trained on (a+b-c; the base model is then "
                "pretrained on subtraction facts too) and report the students distilled from them on it."})
    reward_outcome: bool | None = field(default=None, metadata={
        "help": "Also distil a student from each reward bucket of graded explanations and report how the reward "
                "ranks them against what students learn (default: on in the full demo, off with --quick)."})
    workers: int = field(default=2, metadata={
        "help": "Stages run at once (each gets cores / workers threads; one that runs alone gets every core)."})
    budgets: str | None = field(
        default=None, metadata={"help": "YAML of per-stage flags (default: the shipped configs/toy/demo_budgets.yaml)."}
    )
    overwrite: bool = overwrite_option()


def run(args: DemoArguments) -> dict:
    started = time.perf_counter()
    outputs = DemoOutputs(Path(args.output_dir))
    configs = configs_dir() / "toy"
    budget = load_budget(args.quick, Path(args.budgets) if args.budgets else configs / "demo_budgets.yaml")
    if args.transfer:
        budget = for_transfer(budget, TRANSFER_SHIFT)

    # Stages of every seed, run two at a time where independent
    seeds = budget["seeds"]
    stages = [stage for seed in seeds
              for stage in seed_stages(seed, outputs.folder, budget, configs, base_seed=seeds[0])]
    if args.cold_start:
        stages += [stage for seed in seeds for stage in cold_start_stages(seed, outputs.folder, budget, configs)]
    if args.transfer:
        stages += [stage for seed in seeds for stage in transfer_stages(seed, outputs.folder, budget, configs,
                                                                         TRANSFER_SHIFT, base_seed=seeds[0])]
    reward_outcome = not args.quick if args.reward_outcome is None else args.reward_outcome
    if reward_outcome:
        stages += [stage for seed in seeds for stage in reward_outcome_stages(seed, outputs.folder, budget, configs)]

    # The demo's folder is its own (a second demo there is refused); each stage's command keeps its stage's
    # folder to its own run, so a demo of other budgets stops at the first stage whose folder holds another run
    with RunFolder(outputs.folder, "demo").claim({}, settings({}, demo=args, budget=budget),
                                                 overwrite=args.overwrite) as claim:
        claim.start(arguments=args, budget=budget)
        results = Pipeline(stages, outputs.logs, workers=args.workers).run()
        summary = write_report(outputs.folder, seeds, stages, results, wall_seconds=time.perf_counter() - started,
                               cold_start=args.cold_start, reward_outcome=reward_outcome,
                               transfer=TRANSFER_SHIFT if args.transfer else None)
        claim.finish()
    print(accuracy_table(summary))
    if args.cold_start:
        print(cold_start_table(summary))
    if args.transfer:
        print(transfer_table(summary))
    if reward_outcome:
        print(reward_outcome_table(summary))
    logger.info("report: %s", ReportFiles(outputs.report).summary_md)
    return summary


def parse(argv: Sequence[str] | None) -> tuple[DemoArguments]:
    return parse_command(argv, [DemoArguments], "demo", __doc__.split("\n\n")[0])


def main(argv: Sequence[str] | None = None) -> int:
    setup_logging()
    (args,) = parse(argv)
    run(args)
    return 0
