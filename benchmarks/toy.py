"""Benchmark: the toy world's calibration, through rlt's own commands.

Does teaching visibly matter in the toy world? Trains (with the demo's full budgets, one seed) a
student on answers alone and one on gold explanations, evaluates both on held-out questions, then
scores explanations of every kind (gold and each corruption) with the RLT reward: the warmed-up
teacher explaining, the gold student judging. Prints the bounds and the mean reward per kind.

    python benchmarks/toy.py [--output_dir runs/toy_benchmark] [--seed 0] [--budgets YAML] [--smoke]

``--smoke``: the same stages on the tests' tiny budgets (tests/data/demo_smoke_budgets.yaml), in a temporary
folder unless ``--output_dir`` (where a smoke demo ran, its stages are done already): that the script runs (its
figures mean nothing then).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from collections import defaultdict
from pathlib import Path

from rlt.commands.parsing import configs_dir
from rlt.commands.score import ScoreOutputs
from rlt.demo.pipeline import Pipeline, Stage
from rlt.demo.stages import DemoOutputs, load_budget, seed_stages

SMOKE_BUDGETS = Path(__file__).resolve().parents[1] / "tests" / "data" / "demo_smoke_budgets.yaml"
NEEDED = ("world", "student_gold", "eval_gold", "student_answer_only", "eval_answer_only", "teacher_sft")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output_dir", type=Path, help="Default: runs/toy_benchmark (--smoke: a temporary folder).")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--budgets", type=Path, help="The demo's budgets YAML (default: the shipped "
                        "configs/toy/demo_budgets.yaml).")
    parser.add_argument("--smoke", action="store_true", help="The tests' tiny budgets (about a minute): that the "
                        "script runs.")
    args = parser.parse_args()
    if args.smoke:
        args.budgets = args.budgets or SMOKE_BUDGETS
        if args.output_dir is None:
            smoke_dir = tempfile.TemporaryDirectory()  # removed when main returns
            args.output_dir = Path(smoke_dir.name)
    args.output_dir = args.output_dir or Path("runs/toy_benchmark")

    configs = configs_dir() / "toy"
    budget = load_budget(False, args.budgets or configs / "demo_budgets.yaml")
    demo = DemoOutputs(args.output_dir)
    run = demo.seed(args.seed)
    stages = [s for s in seed_stages(args.seed, args.output_dir, budget, configs) if s.name.split("/")[1] in NEEDED]
    scored = ScoreOutputs(run.folder("score_by_kind"))
    stages.append(Stage(f"seed{args.seed}/score_by_kind", (
        "score", "--config", str(configs / "score.yaml"), "--teacher", str(run.folder("teacher_sft")),
        "--student", str(run.folder("student_gold")), "--dataset", str(run.world.explanations_by_kind),
        "--output_dir", str(scored.folder)), (f"seed{args.seed}/teacher_sft", f"seed{args.seed}/student_gold"),
        "RLT reward of every explanation kind"))
    Pipeline(stages, demo.logs).run()

    print()
    accuracy = {kind: run.evaluation(kind).read_summary()["pass@1"] for kind in ("answer_only", "gold")}
    rewards = defaultdict(list)
    for row in scored.read_scored():
        rewards[row["kind"]].append(row["reward"])
    means = {kind: statistics.fmean(values) for kind, values in rewards.items()}

    print(f"held-out accuracy: answers only {accuracy['answer_only']:.3f}, gold explanations {accuracy['gold']:.3f}")
    print(f"{'explanation kind':<20}{'mean RLT reward':>16}{'n':>6}")
    for kind, mean in sorted(means.items(), key=lambda item: -item[1]):
        print(f"{kind:<20}{mean:>16.3f}{len(rewards[kind]):>6}")
    best_corruption = max(mean for kind, mean in means.items() if kind != "gold")
    print(f"toy benchmark: answer-only {accuracy['answer_only']:.2f}, gold {accuracy['gold']:.2f}, "
          f"reward gold {means['gold']:.2f}, best corruption {best_corruption:.2f}")


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
