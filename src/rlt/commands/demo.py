"""``rlt demo``: the paper's claim in miniature, offline on a CPU.

    rlt demo [--quick true] [--cold_start true] [--output_dir runs/demo]

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
   reward, the same budget for both) from the warm-up-teacher and the RL-teacher students, evaluated too.

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
from rlt.demo.report import ReportFiles, accuracy_table, cold_start_table, write_report
from rlt.demo.stages import DemoOutputs, cold_start_stages, load_budget, seed_stages
from rlt.run_folder import RunFolder, settings

logger = logging.getLogger(__name__)


@dataclass
class DemoArguments:
    output_dir: str = field(default="runs/demo", metadata={"help": "Report and run folder."})
    quick: bool = field(default=False, metadata={
        "help": "Seed 0 alone: the full demo's first seed."})
    cold_start: bool = field(default=False, metadata={
        "help": "Also run student-rl from the warm-up- and RL-teacher students (the paper's cold start) and "
                "report their accuracy before and after."})
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

    # Stages of every seed, run two at a time where independent
    seeds = budget["seeds"]
    stages = [stage for seed in seeds
              for stage in seed_stages(seed, outputs.folder, budget, configs, base_seed=seeds[0])]
    if args.cold_start:
        stages += [stage for seed in seeds for stage in cold_start_stages(seed, outputs.folder, budget, configs)]

    # The demo's folder is its own (a second demo there is refused); each stage's command keeps its stage's
    # folder to its own run, so a demo of other budgets stops at the first stage whose folder holds another run
    with RunFolder(outputs.folder, "demo").claim({}, settings({}, demo=args, budget=budget),
                                                 overwrite=args.overwrite) as claim:
        claim.start(arguments=args, budget=budget)
        results = Pipeline(stages, outputs.logs, workers=args.workers).run()
        summary = write_report(outputs.folder, seeds, stages, results, wall_seconds=time.perf_counter() - started,
                               cold_start=args.cold_start)
        claim.finish()
    print(accuracy_table(summary))
    if args.cold_start:
        print(cold_start_table(summary))
    logger.info("report: %s", ReportFiles(outputs.report).summary_md)
    return summary


def parse(argv: Sequence[str] | None) -> tuple[DemoArguments]:
    return parse_command(argv, [DemoArguments], "demo", __doc__.split("\n\n")[0])


def main(argv: Sequence[str] | None = None) -> int:
    setup_logging()
    (args,) = parse(argv)
    run(args)
    return 0
