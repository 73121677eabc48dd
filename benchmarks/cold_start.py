"""Benchmark: the paper's two other uses of a trained teacher, measured in the toy world.

(a) **Cold start.** The students distilled from the warm-up teacher and from the RL teacher are each the
    starting point of ordinary RL (``rlt student-rl``, exact-answer reward, configs/toy/student_rl.yaml:
    the same budget for both); held-out accuracy before and after.
(b) **Zero-shot transfer.** The demo's teachers, trained on three operands from 50 to 99, explain questions
    of a task they never saw (``--shift``: four operands, three from 10 to 49, or ``a+b-c``); students distilled from
    the warm-up teacher's and the RL teacher's explanations, and one trained on answers alone, are
    evaluated on that task.

It runs the demo's pipeline (nothing of it again in a finished ``rlt demo`` folder, nor (a) after
``rlt demo --cold_start true``) with (a) and (b) added, every stage an ``rlt`` command, two at a time,
resumable. Per seed, then mean ± std over the seeds:

    python benchmarks/cold_start.py [--demo_dir runs/demo_full] [--quick] [--budgets YAML] [--smoke]

``--quick``: seed 0 alone. ``--smoke``: ``--quick`` on the tests' tiny budgets (tests/data/demo_smoke_budgets.yaml),
in a temporary folder unless ``--demo_dir`` (a smoke demo's, whose stages are done already): that the script runs
(its figures mean nothing then).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

from rlt.commands.evaluate import EvaluateOutputs
from rlt.commands.parsing import configs_dir
from rlt.demo.pipeline import Pipeline
from rlt.demo.report import explained_shares
from rlt.demo.stages import (
    SHIFTS,
    DemoOutputs,
    cold_start_stages,
    for_transfer,
    load_budget,
    seed_stages,
    transfer_stages,
)

TRANSFER = {"answer_only": "answer-only", "warmup_teacher": "warm-up", "rl_teacher": "RL teacher"}
SMOKE_BUDGETS = Path(__file__).resolve().parents[1] / "tests" / "data" / "demo_smoke_budgets.yaml"


def _accuracy(evaluation: EvaluateOutputs) -> float:
    return evaluation.read_summary()["pass@1"]


def _spread(values: list[float]) -> str:
    return f"{statistics.fmean(values):.3f} ± {statistics.pstdev(values):.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--demo_dir", type=Path, help="Default: runs/demo_full (--smoke: a temporary folder).")
    parser.add_argument("--quick", action="store_true", help="Seed 0 alone (the quick demo).")
    parser.add_argument("--shift", choices=sorted(SHIFTS), default="four_operands",
                        help="The task the teachers never saw: four operands, three from 10 to 49, or a+b-c (its "
                        "base pretrained on subtraction facts too).")
    parser.add_argument("--budgets", type=Path, help="The demo's budgets YAML (default: the shipped "
                        "configs/toy/demo_budgets.yaml).")
    parser.add_argument("--smoke", action="store_true", help="--quick on the tests' tiny budgets (a minute or "
                        "two): that the script runs.")
    args = parser.parse_args()
    if args.smoke:
        args.budgets, args.quick = args.budgets or SMOKE_BUDGETS, True
        if args.demo_dir is None:
            smoke_dir = tempfile.TemporaryDirectory()  # removed when main returns
            args.demo_dir = Path(smoke_dir.name)
    args.demo_dir = args.demo_dir or Path("runs/demo_full")
    configs = configs_dir() / "toy"
    budget = for_transfer(load_budget(args.quick, args.budgets or configs / "demo_budgets.yaml"), args.shift)
    seeds, root = budget["seeds"], args.demo_dir
    stages = []  # the demo's stages (done already in a finished demo folder), then (a) and (b)
    for seed in seeds:
        stages += seed_stages(seed, root, budget, configs, base_seed=seeds[0])
        stages += cold_start_stages(seed, root, budget, configs)
        stages += transfer_stages(seed, root, budget, configs, args.shift, base_seed=seeds[0])
    Pipeline(stages, DemoOutputs(root).logs).run()

    rows = {key: [] for key in ("warmup_before", "warmup_after", "rl_before", "rl_after", *TRANSFER)}
    print(f"\nseed  {'warm-up student':>22}  {'RL-teacher student':>22}  "
          + "  ".join(f"{f'transfer {label}':>22}" for label in TRANSFER.values()))
    for seed in seeds:
        folders = DemoOutputs(root).seed(seed)
        for short, student in (("warmup", "warmup_teacher"), ("rl", "rl_teacher")):
            rows[f"{short}_before"].append(_accuracy(folders.evaluation(student)))
            rows[f"{short}_after"].append(_accuracy(folders.evaluation(f"cold_start_{student}")))
        for kind in TRANSFER:
            rows[kind].append(_accuracy(folders.evaluation(f"{args.shift}_{kind}")))
        print(f"{seed:<4}  {rows['warmup_before'][-1]:>10.3f} -> {rows['warmup_after'][-1]:.3f}  "
              f"{rows['rl_before'][-1]:>12.3f} -> {rows['rl_after'][-1]:.3f}  "
              + "  ".join(f"{rows[kind][-1]:>22.3f}" for kind in TRANSFER))
    print(f"mean  {_spread(rows['warmup_before'])} -> {_spread(rows['warmup_after'])}, "
          f"{_spread(rows['rl_before'])} -> {_spread(rows['rl_after'])}; transfer "
          + ", ".join(f"{label} {_spread(rows[kind])}" for kind, label in TRANSFER.items()))
    for teacher, label in (("teacher_sft", "warm-up teacher"), ("teacher_rl", "RL teacher")):
        gold, reached = zip(*(explained_shares(DemoOutputs(root).seed(seed).distillation(teacher, f"{args.shift}_"))
                              for seed in seeds))
        print(f"{label}'s explanations of the new task: gold {_spread(gold)}, "
              f"last step at the total {_spread(reached)}")
    mean = {key: statistics.fmean(values) for key, values in rows.items()}
    print(f"cold start benchmark: warm-up student {mean['warmup_before']:.3f} -> {mean['warmup_after']:.3f}, "
          f"RL-teacher student {mean['rl_before']:.3f} -> {mean['rl_after']:.3f}, transfer: answer-only "
          f"{mean['answer_only']:.3f}, warm-up {mean['warmup_teacher']:.3f}, RL teacher {mean['rl_teacher']:.3f}")


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
