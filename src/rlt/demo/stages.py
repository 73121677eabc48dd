"""The demo's stages: each one an ``rlt`` command a user would run, with what it needs first."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from rlt.commands.distill import DistillOutputs
from rlt.commands.evaluate import EvaluateOutputs
from rlt.commands.score import ScoreOutputs
from rlt.commands.toy import GradedOutputs
from rlt.demo.pipeline import Stage
from rlt.errors import UserError
from rlt.run_folder import OutputFile
from rlt.toy.world import ToyWorld
from rlt.training import TrainingOutputs

# The students distilled from a teacher, each the start of the paper's cold-start RL.
COLD_START_STUDENTS = ("warmup_teacher", "rl_teacher")
# Tasks the teachers never trained on (the demo's: three operands from 50 to 99), as `rlt toy init` flags, and
# the flags its base world then needs: a subtraction in the same frame asks for a base that knows subtraction facts.
SHIFTS = {"four_operands": ("--operands", "4"), "small_operands": ("--low", "10", "--high", "49"),
          "subtraction": ("--operators", "+-")}
SHIFT_BASE_FLAGS = {"subtraction": ("--pretrain_operators", "+-")}
TRANSFER_STUDENTS = ("answer_only", "warmup_teacher", "rl_teacher")
# The commands that train: a demo killed mid-stage leaves that stage's checkpoints, and the demo started again
# continues from them (`--resume true` on an empty folder trains from the start).
TRAINING_COMMANDS = frozenset({"teacher-sft", "teacher-rl", "student-sft", "student-rl"})
# Reward against outcome: the graded explanations (rlt.toy.graded: six grades and the two teachers' own) are cut
# into as many parts as they have sources, so that each part holds about as many rows as one source (a budgets
# YAML's `reward_buckets` sets another count).
REWARD_BUCKETS = 8


def load_budget(quick: bool, path: Path) -> dict:
    """A budgets YAML (configs/toy/demo_budgets.yaml): its ``seeds`` (``quick``: the first alone), optionally
    ``reward_buckets`` (default :data:`REWARD_BUCKETS`) and, per command, the flags appended to
    configs/toy/<command>.yaml (none for a command it does not name)."""
    if not path.is_file():
        raise UserError(f"--budgets {path}: no such file")
    budget = yaml.safe_load(path.read_text())
    seeds = budget.get("seeds") if isinstance(budget, dict) else None
    if not (isinstance(seeds, list) and seeds and all(isinstance(seed, int) for seed in seeds)):
        raise UserError(f"--budgets {path}: expected `seeds:` a list of integers, then a list of flags per command")
    buckets = budget.setdefault("reward_buckets", REWARD_BUCKETS)
    if isinstance(buckets, bool) or not isinstance(buckets, int) or buckets < 2:
        raise UserError(f"--budgets {path}: `reward_buckets:` must be an integer of at least 2 (a correlation "
                        f"needs two points), got {buckets!r}")
    return {**budget, "seeds": seeds[:1] if quick else seeds}


@dataclass(frozen=True)
class SeedFolders:
    """Where each stage of one seed writes, ``root/seed<S>/<stage>``, read through its command's outputs."""

    run: Path

    def folder(self, stage: str) -> Path:
        return self.run / stage

    @property
    def world(self) -> ToyWorld:
        return self.world_named("world")

    def world_named(self, stage: str) -> ToyWorld:
        return ToyWorld(self.folder(stage))

    def trainer(self, stage: str) -> TrainingOutputs:
        """A trained model's folder: ``teacher_sft``, ``teacher_rl``, ``student_<kind>``, ``cold_start_<kind>``."""
        return TrainingOutputs(self.folder(stage))

    def distillation(self, teacher: str, prefix: str = "") -> DistillOutputs:
        """``teacher``'s explanations (``distill_teacher_sft``, ...; ``prefix``: of another task's questions)."""
        return DistillOutputs(self.folder(f"{prefix}distill_{teacher}"))

    def evaluation(self, name: str) -> EvaluateOutputs:
        """A student's held-out evaluation, ``eval_<name>`` (``name``: the student without ``student_``)."""
        return EvaluateOutputs(self.folder(f"eval_{name}"))

    @property
    def graded(self) -> GradedOutputs:
        return GradedOutputs(self.folder("graded"))

    @property
    def graded_scores(self) -> ScoreOutputs:
        return ScoreOutputs(self.folder("score_graded"))


@dataclass(frozen=True)
class DemoOutputs:
    """A demo's folder: one folder per seed, the pipeline's stage logs and markers, and the report."""

    folder: Path
    logs = OutputFile("logs")
    report = OutputFile("report")

    def seed(self, seed: int) -> SeedFolders:
        return SeedFolders(self.folder / f"seed{seed}")


@dataclass(frozen=True)
class SeedStages:
    """Builds the stages of one seed: ``rlt <command> --config configs/toy/<command>.yaml <flags> --seed S
    <budget flags>``, named ``seed<S>/<stage>``, in the seed's folder ``root/seed<S>``."""

    seed: int
    root: Path
    budget: dict  # per-command flags appended to the config (configs/toy/demo_budgets.yaml)
    configs: Path

    @property
    def folders(self) -> SeedFolders:
        return DemoOutputs(self.root).seed(self.seed)

    @property
    def run(self) -> Path:
        return self.folders.run

    def name(self, stage: str) -> str:
        return f"seed{self.seed}/{stage}"

    def command(self, command: str, stage: str, needs: Sequence[str], description: str, *argv: object,
                seeded: bool = True) -> Stage:
        """``seeded``: the command takes ``--seed`` (one that draws nothing, such as ``score``, does not)."""
        key = command.replace("-", "_")
        flags = ["--config", str(self.configs / f"{key}.yaml"), *map(str, argv),
                 *(("--seed", str(self.seed)) if seeded else ()),
                 *(("--resume", "true") if command in TRAINING_COMMANDS else ())]
        return Stage(self.name(stage), (command, *flags, *self.budget.get(key, ())), tuple(map(self.name, needs)),
                     description)

    def world(self, stage: str, description: str, *flags: str, base_from: int | None = None) -> Stage:
        """``rlt toy init`` into ``run/<stage>`` with the budget's world flags; with ``base_from`` (a seed),
        copying that seed's pretrained base model instead of pretraining one."""
        argv = ("toy", "init", "--output_dir", str(self.folders.folder(stage)), "--seed", str(self.seed), *flags,
                *self.budget.get("world", ()))
        if base_from is None:
            return Stage(self.name(stage), argv, (), description)
        base = DemoOutputs(self.root).seed(base_from).world.base_model
        return Stage(self.name(stage), (*argv, "--base_model", str(base)), (f"seed{base_from}/world",), description)

    def distill(self, teacher: str, dataset: Path, needs: Sequence[str], description: str, *flags: object,
                prefix: str = "") -> Stage:
        """``rlt distill``: ``teacher`` explains ``dataset`` into ``run/<prefix>distill_<teacher>``."""
        out = self.folders.distillation(teacher, prefix).folder
        return self.command("distill", out.name, needs, description, "--teacher", self.folders.folder(teacher),
                            "--dataset", dataset, "--output_dir", out, *flags)

    def evaluate(self, model: str, heldout: Path, needs: Sequence[str], name: str | None = None) -> Stage:
        """``rlt evaluate`` of ``run/<model>`` on ``heldout``, written to ``run/eval_<name>`` (by default the
        model without its ``student_``)."""
        out = self.folders.evaluation(name or model.removeprefix("student_")).folder
        return self.command("evaluate", out.name, needs, f"held-out accuracy ({out.name.removeprefix('eval_')})",
                            "--model", self.folders.folder(model), "--dataset", heldout, "--output_dir", out)

    def student(self, kind: str, dataset: Path | str, needs: Sequence[str], base: Path, heldout: Path) -> list[Stage]:
        """A student trained from ``base`` on ``dataset`` (``run/student_<kind>``) and its evaluation."""
        stage = f"student_{kind}"
        return [
            self.command("student-sft", stage, needs, f"student on {kind.replace('_', ' ')} explanations",
                         "--model", base, "--dataset", dataset, "--output_dir", self.folders.folder(stage),
                         "--disable_tqdm", "true"),
            self.evaluate(stage, heldout, [stage]),
        ]


def seed_stages(seed: int, root: Path, budget: dict, configs: Path, base_seed: int | None = None) -> list[Stage]:
    """The pipeline of one seed: world → students, teacher → RL → explanations → students → evaluation.

    With ``base_seed`` (another seed of the same run), the world copies that seed's pretrained base model
    instead of pretraining its own: the demo's seeds share one base, as the paper's runs all start from
    one Qwen2.5-7B-Instruct, and a seed draws its own data and trains its own models."""
    stages = SeedStages(seed, root, budget, configs)
    folders, world = stages.folders, stages.folders.world
    judge = folders.folder("student_gold")

    def explanations(teacher: str, needs: Sequence[str]) -> Stage:
        return stages.distill(teacher, world.train, needs, f"{teacher.replace('_', ' ')} explains",
                              "--best_of_k_student", judge)

    if base_seed in (None, seed):
        world_stage = stages.world("world", "toy world")
    else:
        world_stage = stages.world("world", f"toy world (seed {base_seed}'s base model)", base_from=base_seed)
    # Listed so that the critical path (judge and warm-up → RL → explanations → student) starts first.
    return [
        world_stage,
        *stages.student("gold", world.train, ["world"], world.base_model, world.heldout),
        stages.command("teacher-sft", "teacher_sft", ["world"], "teacher warm-up", "--model", world.base_model,
                       "--dataset", world.teacher_warmup, "--output_dir", folders.folder("teacher_sft"),
                       "--disable_tqdm", "true"),
        stages.command("teacher-rl", "teacher_rl", ["teacher_sft", "student_gold"], "GRPO on the RLT reward",
                       "--model", folders.folder("teacher_sft"), "--student", judge, "--dataset", world.train,
                       "--output_dir", folders.folder("teacher_rl"), "--disable_tqdm", "true"),
        explanations("teacher_sft", ["teacher_sft", "student_gold"]),
        explanations("teacher_rl", ["teacher_rl"]),
        *stages.student("answer_only", world.answer_only, ["world"], world.base_model, world.heldout),
        *stages.student("warmup_teacher", folders.distillation("teacher_sft").distilled, ["distill_teacher_sft"],
                        world.base_model, world.heldout),
        *stages.student("rl_teacher", folders.distillation("teacher_rl").distilled, ["distill_teacher_rl"],
                        world.base_model, world.heldout),
    ]


def cold_start_stages(seed: int, root: Path, budget: dict, configs: Path) -> list[Stage]:
    """The paper's cold start: ordinary RL (``rlt student-rl``, the exact-answer reward) from each distilled
    student of :func:`seed_stages`, the same budget for both, evaluated on the same held-out questions."""
    stages = SeedStages(seed, root, budget, configs)
    folders, world = stages.folders, stages.folders.world
    return [stage for student in COLD_START_STUDENTS for stage in (
        stages.command("student-rl", f"cold_start_{student}", [f"student_{student}"],
                       f"student-rl from the {student.replace('_', ' ')} student",
                       "--model", folders.folder(f"student_{student}"), "--dataset", world.train,
                       "--output_dir", folders.folder(f"cold_start_{student}"), "--disable_tqdm", "true"),
        stages.evaluate(f"cold_start_{student}", world.heldout, [f"cold_start_{student}"]),
    )]


def for_transfer(budget: dict, shift: str) -> dict:
    """The budget with the flags the demo's world needs for a transfer to ``shift`` (:data:`SHIFT_BASE_FLAGS`)."""
    return {**budget, "world": [*budget.get("world", ()), *SHIFT_BASE_FLAGS.get(shift, ())]}


def transfer_stages(seed: int, root: Path, budget: dict, configs: Path, shift: str, base_seed: int) -> list[Stage]:
    """Zero-shot transfer: the shifted task's world (the demo's base model), each teacher of :func:`seed_stages`
    explaining its training questions with their solutions given, and students on those and on answers alone,
    evaluated on its held-out questions; as many questions as the demo's students see (the budget's)."""
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


def reward_outcome_stages(seed: int, root: Path, budget: dict, configs: Path) -> list[Stage]:
    """Reward against outcome: graded explanations of the training questions (and both teachers' own, from
    :func:`seed_stages`) scored by the RLT reward as the RL teacher's were (warm-up teacher, gold student judging),
    cut by reward into the budget's ``reward_buckets`` parts, a student distilled from each and evaluated."""
    stages = SeedStages(seed, root, budget, configs)
    folders, world = stages.folders, stages.folders.world
    teachers = ("teacher_sft", "teacher_rl")
    samples = ",".join(f"{teacher}={folders.distillation(teacher).messages}" for teacher in teachers)
    graded = Stage(stages.name("graded"), ("toy", "graded", "--samples", samples, "--output_dir",
                                            str(folders.graded.folder), "--seed", str(seed)),
                   tuple(stages.name(f"distill_{teacher}") for teacher in teachers),
                   "explanations of graded quality")
    scores = folders.graded_scores
    score = stages.command("score", scores.folder.name, ["graded", "teacher_sft", "student_gold"],
                           "RLT reward of the graded explanations", "--teacher", folders.folder("teacher_sft"),
                           "--student", folders.folder("student_gold"), "--dataset", folders.graded.graded,
                           "--output_dir", scores.folder, "--reward_buckets", budget["reward_buckets"], seeded=False)
    students = [stage for number in range(1, budget["reward_buckets"] + 1)
                for stage in stages.student(f"reward_bucket{number}", scores.bucket(number), [scores.folder.name],
                                            world.base_model, world.heldout)]
    return [graded, score, *students]
