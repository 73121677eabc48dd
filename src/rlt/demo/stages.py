"""The demo's stages: each one an ``rlt`` command a user would run, with what it needs first."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rlt.demo.pipeline import Stage


def seed_stages(seed: int, root: Path, budget: dict, configs: Path, base_seed: int | None = None) -> list[Stage]:
    """The pipeline of one seed: world → students, teacher → RL → explanations → students → evaluation.

    With ``base_seed`` (another seed of the same run), the world copies that seed's pretrained base model
    instead of pretraining its own: the demo's seeds share one base, as the paper's runs all start from
    one Qwen2.5-7B-Instruct, and a seed draws its own data and trains its own models."""
    run, world = root / f"seed{seed}", root / f"seed{seed}" / "world"
    base, train = str(world / "base_model"), str(world / "data" / "train.jsonl")
    name = f"seed{seed}/{{}}".format

    def stage_of(command: str, stage: str, needs: Sequence[str], description: str, *argv: object) -> Stage:
        flags = ["--config", str(configs / f"{command.replace('-', '_')}.yaml"), *map(str, argv), "--seed", str(seed)]
        return Stage(name(stage), (command, *flags, *budget[command.replace("-", "_")]),
                     tuple(name(n) for n in needs), description)

    def student(kind: str, dataset: str, needs: Sequence[str]) -> list[Stage]:
        return [
            stage_of("student-sft", f"student_{kind}", needs, f"student on {kind.replace('_', ' ')} explanations",
                     "--model", base, "--dataset", dataset, "--output_dir", run / f"student_{kind}",
                     "--disable_tqdm", "true"),
            stage_of("evaluate", f"eval_{kind}", [f"student_{kind}"], f"held-out accuracy ({kind})",
                     "--model", run / f"student_{kind}", "--dataset", world / "data" / "heldout.jsonl",
                     "--output_dir", run / f"eval_{kind}"),
        ]

    def explanations(teacher: str, needs: Sequence[str]) -> Stage:
        return stage_of("distill", f"distill_{teacher}", needs, f"{teacher.replace('_', ' ')} explains",
                        "--teacher", run / teacher, "--dataset", train, "--output_dir", run / f"distill_{teacher}",
                        "--best_of_k_student", run / "student_gold")

    world_argv = ("toy", "init", "--config", str(configs / "world.yaml"), "--output_dir", str(world),
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
        stage_of("teacher-sft", "teacher_sft", ["world"], "teacher warm-up", "--model", base,
                 "--dataset", world / "data" / "teacher_warmup.jsonl", "--output_dir", run / "teacher_sft",
                 "--disable_tqdm", "true"),
        stage_of("teacher-rl", "teacher_rl", ["teacher_sft", "student_gold"], "GRPO on the RLT reward",
                 "--model", run / "teacher_sft", "--student", run / "student_gold", "--dataset", train,
                 "--output_dir", run / "teacher_rl", "--disable_tqdm", "true"),
        explanations("teacher_sft", ["teacher_sft", "student_gold"]),
        explanations("teacher_rl", ["teacher_rl"]),
        *student("answer_only", str(world / "data" / "answer_only.jsonl"), ["world"]),
        *student("warmup_teacher", str(run / "distill_teacher_sft" / "distilled.jsonl"), ["distill_teacher_sft"]),
        *student("rl_teacher", str(run / "distill_teacher_rl" / "distilled.jsonl"), ["distill_teacher_rl"]),
    ]
