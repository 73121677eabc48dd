"""Benchmark: the paper's two other uses of a trained teacher, measured in the toy world.

(a) **Cold start.** The students distilled from the warm-up teacher and from the RL teacher are each the
    starting point of ordinary RL (``rlt student-rl``, exact-answer reward, configs/toy/student_rl.yaml:
    the same budget for both); held-out accuracy before and after.
(b) **Zero-shot transfer.** The demo's teachers, trained on three operands from 50 to 99, explain questions
    of a task they never saw (``--shift``: four operands, or three from 10 to 49); students distilled from
    the warm-up teacher's and the RL teacher's explanations, and one trained on answers alone, are
    evaluated on that task.

It runs on a finished ``rlt demo`` folder (running the demo first if the folder has none), every stage an
``rlt`` command as in the demo, two at a time, resumable. Per seed, then mean ± std over the seeds:

    python benchmarks/cold_start.py [--demo_dir runs/demo_full] [--quick]   # --quick: seed 0 alone
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from pathlib import Path

from rlt.cli import main as rlt
from rlt.config import configs_dir
from rlt.demo.pipeline import Pipeline, Stage

STUDENTS = ("warmup_teacher", "rl_teacher")
TRANSFER = {"answer_only": "answer-only", "warmup_teacher": "warm-up", "rl_teacher": "RL teacher"}
# Tasks the teachers never trained on (the demo's: three operands from 50 to 99), as `rlt toy init` flags.
SHIFTS = {"four_operands": ("--operands", "4"), "small_operands": ("--low", "10", "--high", "49")}
TRANSFER_QUESTIONS = 8000  # as many as the demo's students see


def seed_stages(run: Path, seed: int, base: Path, shift: str) -> list[Stage]:
    configs = configs_dir() / "toy"
    name = f"seed{seed}/{{}}".format
    world, shifted = run / "world", run / f"world_{shift}"

    def stage(stage_name: str, needs: tuple[str, ...], description: str, *argv: object) -> Stage:
        return Stage(name(stage_name), (*map(str, argv), "--seed", str(seed)), tuple(name(n) for n in needs),
                     description)

    def evaluate(model: Path, heldout: Path, out: str, needs: tuple[str, ...]) -> Stage:
        return stage(out, needs, f"held-out accuracy ({out})", "evaluate", "--config", configs / "evaluate.yaml",
                     "--model", model, "--dataset", heldout, "--output_dir", run / out)

    stages = []
    for student in STUDENTS:  # (a) the same RL budget from each distilled student
        stages += [
            stage(f"cold_start_{student}", (), f"student-rl from the {student} student", "student-rl", "--config",
                  configs / "student_rl.yaml", "--model", run / f"student_{student}", "--dataset",
                  world / "data" / "train.jsonl", "--output_dir", run / f"cold_start_{student}",
                  "--disable_tqdm", "true"),
            evaluate(run / f"cold_start_{student}", world / "data" / "heldout.jsonl", f"eval_cold_start_{student}",
                     (f"cold_start_{student}",)),
        ]
    stages.append(stage(f"world_{shift}", (), f"questions of another task ({shift})", "toy", "init", "--config",
                        configs / "world.yaml", "--output_dir", shifted, *SHIFTS[shift], "--n_train", 20000,
                        "--n_heldout", 500, "--base_model", base))
    for teacher in ("teacher_sft", "teacher_rl"):  # (b) transfer: each teacher explains the new task
        stages.append(stage(f"{shift}_distill_{teacher}", (f"world_{shift}",), f"{teacher} explains the new task",
                            "distill", "--config", configs / "distill.yaml", "--teacher", run / teacher, "--dataset",
                            shifted / "data" / "train.jsonl", "--limit", TRANSFER_QUESTIONS, "--output_dir",
                            run / f"{shift}_distill_{teacher}"))
    sources = {"answer_only": (shifted / "data" / "answer_only.jsonl", f"world_{shift}"),
               "warmup_teacher": (run / f"{shift}_distill_teacher_sft" / "distilled.jsonl",
                                  f"{shift}_distill_teacher_sft"),
               "rl_teacher": (run / f"{shift}_distill_teacher_rl" / "distilled.jsonl", f"{shift}_distill_teacher_rl")}
    for kind, (dataset, needs) in sources.items():
        stages += [
            stage(f"{shift}_student_{kind}", (needs,), f"student on {kind} ({shift})", "student-sft", "--config",
                  configs / "student_sft.yaml", "--model", base, "--dataset", dataset, "--limit", TRANSFER_QUESTIONS,
                  "--output_dir", run / f"{shift}_student_{kind}", "--disable_tqdm", "true"),
            evaluate(run / f"{shift}_student_{kind}", shifted / "data" / "heldout.jsonl", f"eval_{shift}_{kind}",
                     (f"{shift}_student_{kind}",)),
        ]
    return stages


def _accuracy(folder: Path) -> float:
    return json.loads((folder / "summary.json").read_text())["pass@1"]


def _spread(values: list[float]) -> str:
    return f"{statistics.fmean(values):.3f} ± {statistics.pstdev(values):.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--demo_dir", type=Path, default=Path("runs/demo_full"))
    parser.add_argument("--quick", action="store_true", help="Seed 0 alone (the quick demo).")
    parser.add_argument("--shift", choices=sorted(SHIFTS), default="four_operands",
                        help="The task the teachers never saw: four operands, or three from 10 to 49.")
    args = parser.parse_args()
    if not (args.demo_dir / "report" / "summary.json").exists():
        assert rlt(["demo", "--quick", str(args.quick).lower(), "--output_dir", str(args.demo_dir)]) == 0
    seeds = json.loads((args.demo_dir / "report" / "summary.json").read_text())["seeds"]
    base = args.demo_dir / f"seed{seeds[0]}" / "world" / "base_model"
    stages = [s for seed in seeds for s in seed_stages(args.demo_dir / f"seed{seed}", seed, base, args.shift)]
    Pipeline(stages, args.demo_dir / "logs_cold_start").run()

    rows = {key: [] for key in ("warmup_before", "warmup_after", "rl_before", "rl_after", *TRANSFER)}
    print(f"\nseed  {'warm-up student':>22}  {'RL-teacher student':>22}  "
          + "  ".join(f"{f'transfer {label}':>22}" for label in TRANSFER.values()))
    for seed in seeds:
        run = args.demo_dir / f"seed{seed}"
        for short, student in (("warmup", "warmup_teacher"), ("rl", "rl_teacher")):
            rows[f"{short}_before"].append(_accuracy(run / f"eval_{student}"))
            rows[f"{short}_after"].append(_accuracy(run / f"eval_cold_start_{student}"))
        for kind in TRANSFER:
            rows[kind].append(_accuracy(run / f"eval_{args.shift}_{kind}"))
        print(f"{seed:<4}  {rows['warmup_before'][-1]:>10.3f} -> {rows['warmup_after'][-1]:.3f}  "
              f"{rows['rl_before'][-1]:>12.3f} -> {rows['rl_after'][-1]:.3f}  "
              + "  ".join(f"{rows[kind][-1]:>22.3f}" for kind in TRANSFER))
    print(f"mean  {_spread(rows['warmup_before'])} -> {_spread(rows['warmup_after'])}, "
          f"{_spread(rows['rl_before'])} -> {_spread(rows['rl_after'])}; transfer "
          + ", ".join(f"{label} {_spread(rows[kind])}" for kind, label in TRANSFER.items()))
    mean = {key: statistics.fmean(values) for key, values in rows.items()}
    print(f"cold start benchmark: warm-up student {mean['warmup_before']:.3f} -> {mean['warmup_after']:.3f}, "
          f"RL-teacher student {mean['rl_before']:.3f} -> {mean['rl_after']:.3f}, transfer: answer-only "
          f"{mean['answer_only']:.3f}, warm-up {mean['warmup_teacher']:.3f}, RL teacher {mean['rl_teacher']:.3f}")


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
