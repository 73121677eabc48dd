"""The demo's stages: each one an ``rlt`` command a user would run, with what it needs first."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from rlt.demo.pipeline import Stage
from rlt.errors import UserError

# The students distilled from a teacher, each the start of the paper's cold-start RL.
COLD_START_STUDENTS = ("warmup_teacher", "rl_teacher")


def load_budget(quick: bool, path: Path) -> dict:
    """The ``quick`` or ``full`` budget of a budgets YAML (configs/toy/demo_budgets.yaml): its seeds and, per
    command, the flags appended to configs/toy/<command>.yaml (none for a command it does not name)."""
    if not path.is_file():
        raise UserError(f"--budgets {path}: no such file")
    budgets = yaml.safe_load(path.read_text())
    key = "quick" if quick else "full"
    if not isinstance(budgets, dict) or key not in budgets:
        raise UserError(f"--budgets {path}: no {key!r} budget in it")
    return budgets[key]


@dataclass(frozen=True)
class SeedStages:
    """Builds the stages of one seed: ``rlt <command> --config configs/toy/<command>.yaml <flags> --seed S
    <budget flags>``, named ``seed<S>/<stage>``, in the seed's folder ``root/seed<S>``."""

    seed: int
    root: Path
    budget: dict  # per-command flags appended to the config (configs/toy/demo_budgets.yaml)
    configs: Path

    @property
    def run(self) -> Path:
        return self.root / f"seed{self.seed}"

    def name(self, stage: str) -> str:
        return f"seed{self.seed}/{stage}"

    def command(self, command: str, stage: str, needs: Sequence[str], description: str, *argv: object) -> Stage:
        key = command.replace("-", "_")
        flags = ["--config", str(self.configs / f"{key}.yaml"), *map(str, argv), "--seed", str(self.seed)]
        return Stage(self.name(stage), (command, *flags, *self.budget.get(key, ())), tuple(map(self.name, needs)),
                     description)

    def world(self, stage: str, description: str, *flags: str, base_from: int | None = None) -> Stage:
        """``rlt toy init`` into ``run/<stage>`` with the budget's world flags; with ``base_from`` (a seed),
        copying that seed's pretrained base model instead of pretraining one."""
        argv = ("toy", "init", "--config", str(self.configs / "world.yaml"), "--output_dir", str(self.run / stage),
                "--seed", str(self.seed), *flags, *self.budget["world"])
        if base_from is None:
            return Stage(self.name(stage), argv, (), description)
        base = self.root / f"seed{base_from}" / "world" / "base_model"
        return Stage(self.name(stage), (*argv, "--base_model", str(base)), (f"seed{base_from}/world",), description)

    def evaluate(self, model: str, heldout: Path, needs: Sequence[str], out: str | None = None) -> Stage:
        """``rlt evaluate`` of ``run/<model>`` on ``heldout``, written to ``run/<out>`` (by default
        ``eval_<model>`` without its ``student_``)."""
        out = out or "eval_" + model.removeprefix("student_")
        return self.command("evaluate", out, needs, f"held-out accuracy ({out.removeprefix('eval_')})",
                            "--model", self.run / model, "--dataset", heldout, "--output_dir", self.run / out)

    def student(self, kind: str, dataset: Path | str, needs: Sequence[str], base: Path, heldout: Path) -> list[Stage]:
        """A student trained from ``base`` on ``dataset`` (``run/student_<kind>``) and its evaluation."""
        return [
            self.command("student-sft", f"student_{kind}", needs, f"student on {kind.replace('_', ' ')} explanations",
                         "--model", base, "--dataset", dataset, "--output_dir", self.run / f"student_{kind}",
                         "--disable_tqdm", "true"),
            self.evaluate(f"student_{kind}", heldout, [f"student_{kind}"]),
        ]


def seed_stages(seed: int, root: Path, budget: dict, configs: Path, base_seed: int | None = None) -> list[Stage]:
    """The pipeline of one seed: world → students, teacher → RL → explanations → students → evaluation.

    With ``base_seed`` (another seed of the same run), the world copies that seed's pretrained base model
    instead of pretraining its own: the demo's seeds share one base, as the paper's runs all start from
    one Qwen2.5-7B-Instruct, and a seed draws its own data and trains its own models."""
    stages = SeedStages(seed, root, budget, configs)
    run, world = stages.run, stages.run / "world"
    base, train, heldout = world / "base_model", world / "data" / "train.jsonl", world / "data" / "heldout.jsonl"

    def explanations(teacher: str, needs: Sequence[str]) -> Stage:
        return stages.command("distill", f"distill_{teacher}", needs, f"{teacher.replace('_', ' ')} explains",
                              "--teacher", run / teacher, "--dataset", train,
                              "--output_dir", run / f"distill_{teacher}", "--best_of_k_student", run / "student_gold")

    if base_seed in (None, seed):
        world_stage = stages.world("world", "toy world")
    else:
        world_stage = stages.world("world", f"toy world (seed {base_seed}'s base model)", base_from=base_seed)
    # Listed so that the critical path (judge and warm-up → RL → explanations → student) starts first.
    return [
        world_stage,
        *stages.student("gold", train, ["world"], base, heldout),
        stages.command("teacher-sft", "teacher_sft", ["world"], "teacher warm-up", "--model", base,
                       "--dataset", world / "data" / "teacher_warmup.jsonl", "--output_dir", run / "teacher_sft",
                       "--disable_tqdm", "true"),
        stages.command("teacher-rl", "teacher_rl", ["teacher_sft", "student_gold"], "GRPO on the RLT reward",
                       "--model", run / "teacher_sft", "--student", run / "student_gold", "--dataset", train,
                       "--output_dir", run / "teacher_rl", "--disable_tqdm", "true"),
        explanations("teacher_sft", ["teacher_sft", "student_gold"]),
        explanations("teacher_rl", ["teacher_rl"]),
        *stages.student("answer_only", world / "data" / "answer_only.jsonl", ["world"], base, heldout),
        *stages.student("warmup_teacher", run / "distill_teacher_sft" / "distilled.jsonl", ["distill_teacher_sft"],
                        base, heldout),
        *stages.student("rl_teacher", run / "distill_teacher_rl" / "distilled.jsonl", ["distill_teacher_rl"],
                        base, heldout),
    ]


def cold_start_stages(seed: int, root: Path, budget: dict, configs: Path) -> list[Stage]:
    """The paper's cold start: ordinary RL (``rlt student-rl``, the exact-answer reward) from each distilled
    student of :func:`seed_stages`, the same budget for both, evaluated on the same held-out questions."""
    stages = SeedStages(seed, root, budget, configs)
    world = stages.run / "world"
    return [stage for student in COLD_START_STUDENTS for stage in (
        stages.command("student-rl", f"cold_start_{student}", [f"student_{student}"],
                       f"student-rl from the {student.replace('_', ' ')} student",
                       "--model", stages.run / f"student_{student}", "--dataset", world / "data" / "train.jsonl",
                       "--output_dir", stages.run / f"cold_start_{student}", "--disable_tqdm", "true"),
        stages.evaluate(f"cold_start_{student}", world / "data" / "heldout.jsonl", [f"cold_start_{student}"]),
    )]
