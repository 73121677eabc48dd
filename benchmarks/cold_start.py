"""Benchmark: the paper's two other uses of a trained teacher, measured in the toy world.

(a) **Cold start.** The students distilled from the warm-up teacher and from the RL teacher are each the
    starting point of ordinary RL (``rlt student-rl``, exact-answer reward, configs/toy/student_rl.yaml:
    the same budget for both); held-out accuracy before and after.
(b) **Zero-shot transfer.** The demo's teachers, trained on three operands from 50 to 99, explain questions
    of a task they never saw (``--shift``: four operands, or three from 10 to 49); students distilled from
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
import re
import statistics
import tempfile
from pathlib import Path

from rlt.commands.distill import DistillOutputs
from rlt.commands.evaluate import EvaluateOutputs
from rlt.commands.parsing import configs_dir
from rlt.demo.pipeline import Pipeline, Stage
from rlt.demo.stages import DemoOutputs, SeedStages, cold_start_stages, load_budget, seed_stages
from rlt.toy.task import GOLD, explanation_kind, numbers_of

TRANSFER = {"answer_only": "answer-only", "warmup_teacher": "warm-up", "rl_teacher": "RL teacher"}
_STEP = re.compile(r"\d+\+\d+=(\d+)")  # a step of a toy explanation, e.g. 146+55=201
# Tasks the teachers never trained on (the demo's: three operands from 50 to 99), as `rlt toy init` flags.
SHIFTS = {"four_operands": ("--operands", "4"), "small_operands": ("--low", "10", "--high", "49")}
SMOKE_BUDGETS = Path(__file__).resolve().parents[1] / "tests" / "data" / "demo_smoke_budgets.yaml"


def transfer_stages(seed: int, root: Path, budget: dict, configs: Path, shift: str, base_seed: int) -> list[Stage]:
    """(b): the shifted task's world (the demo's base model), each teacher's explanations of its training
    questions, and students on those and on answers alone, evaluated on its held-out questions; as many
    questions as the demo's students see (the budget's)."""
    stages = SeedStages(seed, root, budget, configs)
    folders = stages.folders
    shifted, base = folders.world_named(f"world_{shift}"), DemoOutputs(root).seed(base_seed).world.base_model
    world = stages.world(f"world_{shift}", f"questions of another task ({shift})", *SHIFTS[shift],
                         base_from=base_seed)
    explanations = [stages.distill(teacher, shifted.train, [f"world_{shift}", teacher],
                                   f"{teacher.replace('_', ' ')} explains the new task", prefix=f"{shift}_")
                    for teacher in ("teacher_sft", "teacher_rl")]
    sources = {"answer_only": (shifted.answer_only, f"world_{shift}"),
               **{kind: (folders.distillation(teacher, f"{shift}_").distilled, f"{shift}_distill_{teacher}")
                  for kind, teacher in (("warmup_teacher", "teacher_sft"), ("rl_teacher", "teacher_rl"))}}
    students = [stage for kind, (dataset, needs) in sources.items() for stage in (
        stages.command("student-sft", f"{shift}_student_{kind}", [needs], f"student on {kind} ({shift})",
                       "--model", base, "--dataset", dataset, "--output_dir", folders.folder(f"{shift}_student_{kind}"),
                       "--disable_tqdm", "true"),
        stages.evaluate(f"{shift}_student_{kind}", shifted.heldout, [f"{shift}_student_{kind}"],
                        name=f"{shift}_{kind}"),
    )]
    return [world, *explanations, *students]


def _accuracy(evaluation: EvaluateOutputs) -> float:
    return evaluation.read_summary()["pass@1"]


def _explained(distillation: DistillOutputs) -> tuple[float, float]:
    """Of a teacher's explanations of the new task: the share that is gold, and the share whose last step
    reaches the question's total (the answer the teacher was shown)."""
    rows = distillation.read_messages()
    numbers = [numbers_of(r["question"]) for r in rows]
    gold = [explanation_kind(n, r["reasoning_trace"]) == GOLD for n, r in zip(numbers, rows)]
    sums = [_STEP.findall(r["reasoning_trace"]) for r in rows]
    reached = [bool(s) and int(s[-1]) == sum(n) for n, s in zip(numbers, sums)]
    return statistics.fmean(gold), statistics.fmean(reached)


def _spread(values: list[float]) -> str:
    return f"{statistics.fmean(values):.3f} ± {statistics.pstdev(values):.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--demo_dir", type=Path, help="Default: runs/demo_full (--smoke: a temporary folder).")
    parser.add_argument("--quick", action="store_true", help="Seed 0 alone (the quick demo).")
    parser.add_argument("--shift", choices=sorted(SHIFTS), default="four_operands",
                        help="The task the teachers never saw: four operands, or three from 10 to 49.")
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
    budget = load_budget(args.quick, args.budgets or configs / "demo_budgets.yaml")
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
        gold, reached = zip(*(_explained(DemoOutputs(root).seed(seed).distillation(teacher, f"{args.shift}_"))
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
