"""`rlt demo --quick` end to end (the project's main job), and the pipeline it runs on."""

from __future__ import annotations

import json

import pytest
from conftest import SMOKE_BUDGETS

from rlt.cli import main as rlt
from rlt.commands.parsing import configs_dir
from rlt.demo.pipeline import Pipeline, Stage, StageFailed, StageRefused
from rlt.demo.stages import (
    TRAINING_COMMANDS,
    cold_start_stages,
    for_transfer,
    load_budget,
    reward_outcome_stages,
    seed_stages,
    transfer_stages,
)
from rlt.toy.graded import GRADES


def test_quick_demo_reports_the_four_accuracies(smoke_demo, capsys, pins):
    """Every stage of `rlt demo --quick --cold_start true --reward_outcome true` for real, on tiny budgets (the
    shipped ones take minutes; the run is tests/conftest.py's smoke demo), its figures pinned
    (tests/data/pinned_recipes.json; regenerate: ``git worktree add /tmp/pins-head HEAD && .venv/bin/python
    tests/pinned.py --src /tmp/pins-head/src``).

    The paper's ordering (answer-only < warm-up < RL ≤ gold) cannot show at a budget the suite affords; measured
    on seed 0 (2 CPU cores, AMD EPYC), accuracies answer-only / warm-up / RL / gold:
    - these budgets (world 300 questions, base pretrained 5 steps; SFT 10 steps; GRPO 2): 0 / 0 / 0 / 0, with
      1 thread per stage, 2, or the demo's mix (bit-identical figures), in 63 s uncontended;
    - base pretrained 200 steps, SFT 60, GRPO 4: 0.008 / 0.017 / 0 / 0.017 (1 or 2 of 120 samples: noise);
    - operands 1 to 9 (--low 1 --high 9), base pretrained 300 steps, SFT 150, GRPO 4: 0.317 / 0.075 / 0.117 /
      0.292 (the answer-only student first), in 286 s on the shared machine;
    and the base model alone completes 11% of fresh addition facts after 600 pretraining steps (1.5 minutes),
    where the demo's students need 98% (docs/toy-world.md). So what is pinned is what is stable: every student
    answers nothing right (0 exactly), and GRPO on the RLT reward raises the reward of the teacher's
    explanations (-5.164 before, -4.986 after: the teacher side of the claim), to the tolerance of tests/pinned.py.
    """
    out = smoke_demo.folder
    summary = json.loads((out / "report" / "summary.json").read_text())
    assert set(summary["accuracy"]) == {"answer_only", "warmup_teacher", "rl_teacher", "gold"}
    reward_before_rl, reward_after_rl = (summary["reward"][t]["mean"] for t in ("teacher_sft", "teacher_rl"))
    assert isinstance(summary["wall_seconds"], float)
    assert reward_after_rl > reward_before_rl
    pins.check("test_demo quick", {"summary": {
        **{f"accuracy/{student}": spread["mean"] for student, spread in summary["accuracy"].items()},
        **{f"accuracy/cold_start {student}": moments["after"]["mean"]
           for student, moments in summary["cold_start"].items()},
        "reward_before_rl": reward_before_rl, "reward_after_rl": reward_after_rl,
        **{f"teacher_kinds/{teacher} {kind}": share for teacher, shares in summary["teacher_kinds"].items()
           for kind, share in shares.items()},
    }})
    assert len(summary["ordering_holds_per_seed"]) == len(summary["rl_minus_warmup_per_seed"]) == 1
    assert summary["base_model_pretraining"]["steps"] == 5
    assert " of 1 seeds" in (out / "report" / "summary.md").read_text()
    for teacher in ("teacher_sft", "teacher_rl"):
        shares = summary["teacher_kinds"][teacher]
        assert sum(shares.values()) == pytest.approx(1.0)
        assert shares.get("gold", 0.0) == pytest.approx(summary["teacher_gold_rate"][teacher]["mean"])
    outcome = summary["reward_outcome"]
    rewards = outcome["per_seed"][0]["mean_reward"]
    assert len(rewards) == len(outcome["per_seed"][0]["accuracy"]) == outcome["buckets"] == 3  # the smoke budgets'
    assert rewards == sorted(rewards)
    assert sum(sum(sources.values()) for sources in outcome["per_seed"][0]["sources"]) == 40 * (len(GRADES) + 2)
    assert "Spearman correlation of a bucket's mean reward" in (out / "report" / "summary.md").read_text()
    for name in ("summary.md", "accuracy.png", "rl_reward.png", "reward_outcome.png", "samples.md", "commands.sh",
                 "stages.json"):
        assert (out / "report" / name).stat().st_size > 0
    stages = json.loads((out / "report" / "stages.json").read_text())
    assert all(s["seconds"] > 0 and s["peak_memory_mib"] > 0 for s in stages.values())
    assert {"seed0/cold_start_warmup_teacher", "seed0/eval_cold_start_rl_teacher"} <= set(stages)
    cold_start = summary["cold_start"]
    assert set(cold_start) == {"warmup_teacher", "rl_teacher"}
    for student, moments in cold_start.items():
        assert moments["before"]["per_seed"] == summary["accuracy"][student]["per_seed"]
        assert 0.0 <= moments["after"]["mean"] <= 1.0
    assert "| cold start:" in (out / "report" / "summary.md").read_text()
    assert "finished by an earlier one" not in (out / "report" / "summary.md").read_text()

    assert rlt(smoke_demo.argv) == 0  # everything resumed: the report says so
    assert "| cold start: student-rl from the student trained on |" in capsys.readouterr().out
    n = len(stages)
    assert f"(this run; {n} of {n} stages finished by an earlier one)" in (out / "report" / "summary.md").read_text()


def test_the_cold_start_follows_each_distilled_student(tmp_path):
    budget = load_budget(True, SMOKE_BUDGETS)
    recipes = configs_dir() / "toy"
    demo = {s.name for s in seed_stages(0, tmp_path, budget, recipes)}
    stages = {s.name: s for s in cold_start_stages(0, tmp_path, budget, recipes)}
    assert stages["seed0/cold_start_rl_teacher"].needs == ("seed0/student_rl_teacher",)
    assert stages["seed0/eval_cold_start_rl_teacher"].needs == ("seed0/cold_start_rl_teacher",)
    assert {n for s in stages.values() for n in s.needs} <= demo | set(stages)
    argv = stages["seed0/cold_start_warmup_teacher"].argv
    assert argv[argv.index("--model") + 1] == str(tmp_path / "seed0" / "student_warmup_teacher")
    assert argv[-len(budget["student_rl"]):] == tuple(budget["student_rl"])


def test_reward_outcome_follows_both_teachers_explanations(tmp_path):
    budget = load_budget(True, SMOKE_BUDGETS)
    recipes = configs_dir() / "toy"
    demo = {s.name for s in seed_stages(0, tmp_path, budget, recipes)}
    stages = {s.name: s for s in reward_outcome_stages(0, tmp_path, budget, recipes)}
    assert stages["seed0/graded"].needs == ("seed0/distill_teacher_sft", "seed0/distill_teacher_rl")
    assert {n for s in stages.values() for n in s.needs} <= demo | set(stages)
    assert len([name for name in stages if name.startswith("seed0/eval_reward_bucket")]) == budget["reward_buckets"]
    assert load_budget(True, configs_dir() / "toy" / "demo_budgets.yaml")["reward_buckets"] == 8
    score = stages["seed0/score_graded"].argv
    assert score[score.index("--teacher") + 1] == str(tmp_path / "seed0" / "teacher_sft")
    assert score[score.index("--student") + 1] == str(tmp_path / "seed0" / "student_gold")
    assert "--seed" not in score


def test_transfer_asks_a_subtraction_of_teachers_trained_on_additions(tmp_path):
    budget = for_transfer(load_budget(True, SMOKE_BUDGETS), "subtraction")
    recipes = configs_dir() / "toy"
    demo = {s.name: s for s in seed_stages(0, tmp_path, budget, recipes)}
    assert demo["seed0/world"].argv[-2:] == ("--pretrain_operators", "+-")  # the base knows subtraction facts
    stages = {s.name: s for s in transfer_stages(1, tmp_path, budget, recipes, "subtraction", base_seed=0)}
    world = stages["seed1/world_subtraction"]
    assert ("--operators", "+-") == world.argv[world.argv.index("--operators"):][:2] and world.needs == ("seed0/world",)
    assert world.argv[-2:] == ("--base_model", str(tmp_path / "seed0" / "world" / "base_model"))
    distill = stages["seed1/subtraction_distill_teacher_rl"]
    assert distill.needs == ("seed1/world_subtraction", "seed1/teacher_rl")
    assert {f"seed1/eval_subtraction_{kind}" for kind in ("answer_only", "warmup_teacher", "rl_teacher")} <= set(stages)


def test_a_missing_budgets_file_is_one_line(tmp_path, rlt_error):
    assert rlt_error(["demo", "--budgets", tmp_path / "nope.yaml", "--output_dir", tmp_path / "demo"]) == (
        f"--budgets {tmp_path / 'nope.yaml'}: no such file")
    assert not (tmp_path / "demo").exists()


@pytest.mark.parametrize("buckets", ["1", "eight", "true"])
def test_a_budget_of_bad_reward_buckets_is_one_line(tmp_path, rlt_error, buckets):
    budgets = tmp_path / "budgets.yaml"
    budgets.write_text(f"seeds: [0]\nreward_buckets: {buckets}\n")
    assert rlt_error(["demo", "--budgets", budgets, "--output_dir", tmp_path / "demo"]).startswith(
        f"--budgets {budgets}: `reward_buckets:` must be an integer of at least 2")
    assert not (tmp_path / "demo").exists()


def _stage(name, *argv, needs=()):
    return Stage(name, argv, needs)


def test_pipeline_runs_in_dependency_order_and_resumes(tmp_path, monkeypatch):
    """Stages are `rlt` commands; here `rlt toy init` twice and a stage that needs both."""
    world = ("--n_train", "20", "--n_heldout", "5", "--pretrain_max_steps", "0")
    stages = [
        _stage("a", "toy", "init", "--output_dir", str(tmp_path / "a"), *world),
        _stage("b", "toy", "init", "--output_dir", str(tmp_path / "b"), *world),
        _stage("c", "toy", "init", "--output_dir", str(tmp_path / "a"), *world, needs=("a", "b")),
    ]
    monkeypatch.setattr("rlt.demo.pipeline.os.cpu_count", lambda: 4)
    results = Pipeline(stages, tmp_path / "state", workers=2).run()
    assert set(results) == {"a", "b", "c"} and all(r.peak_memory_mib > 0 for r in results.values())
    assert all(0 < r.cpu_seconds for r in results.values())
    threads = {name: (tmp_path / "state" / f"{name}.log").read_text().split()[1] for name in "abc"}
    assert threads == {"a": "OMP_NUM_THREADS=2", "b": "OMP_NUM_THREADS=2", "c": "OMP_NUM_THREADS=4"}  # c runs alone
    assert not any(r.resumed for r in results.values())
    again = Pipeline(stages, tmp_path / "state", workers=2).run()
    assert all(r.resumed for r in again.values())


def test_a_stage_stopped_by_a_mistake_is_one_line_naming_its_log(tmp_path):
    stages = [_stage("bad", "toy", "nonsense")]
    with pytest.raises(StageRefused, match=r"^stage bad stopped: rlt toy: unknown subcommand 'nonsense' "
                                           r"\(subcommands: init, graded\) \(its log: .*bad\.log\)$"):
        Pipeline(stages, tmp_path / "state").run()
    assert not (tmp_path / "state" / "bad.done").exists()


def test_a_crashed_stage_names_its_log_and_command(tmp_path):
    log = tmp_path / "bad.log"
    log.write_text("Traceback (most recent call last):\nRuntimeError: boom\n")
    error = StageFailed(_stage("bad", "toy", "init"), log, 1)
    assert str(error).startswith(f"stage 'bad' failed (exit code 1); its log: {log}\ncommand: rlt toy init\n")
    assert str(error).endswith("RuntimeError: boom")


def test_a_demo_of_other_budgets_stops_at_a_folder_holding_another_run(tmp_path):
    world = ("--n_train", "20", "--n_heldout", "5", "--pretrain_max_steps", "0")
    Pipeline([_stage("w", "toy", "init", "--output_dir", str(tmp_path / "w"), *world)], tmp_path / "state").run()
    other = [_stage("w", "toy", "init", "--output_dir", str(tmp_path / "w"), *world, "--seed", "1")]
    with pytest.raises(StageRefused, match=r"stage w stopped: .* made with other settings \(seed: 0 → 1\)"):
        Pipeline(other, tmp_path / "state").run()  # its marker is for another command line: run, and refused


def test_the_full_demo_keeps_the_quick_demos_stages(tmp_path):
    """Seed 0's stages are the same command lines in both, so the full demo run in a quick demo's folder finds
    their markers (the demo's own record compares no settings) and runs the other seeds alone."""
    shipped, recipes = configs_dir() / "toy" / "demo_budgets.yaml", configs_dir() / "toy"
    quick, full = load_budget(True, shipped), load_budget(False, shipped)
    assert quick["seeds"] == full["seeds"][:1] == [0]
    assert seed_stages(0, tmp_path, quick, recipes, base_seed=0) == seed_stages(0, tmp_path, full, recipes, base_seed=0)


def test_unknown_dependencies_are_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown stages"):
        Pipeline([_stage("a", "toy", needs=("zzz",))], tmp_path)


def test_later_seeds_copy_the_first_seeds_base_model(tmp_path):
    budget = load_budget(True, SMOKE_BUDGETS)
    recipes = configs_dir() / "toy"
    first = {s.name: s for s in seed_stages(0, tmp_path, budget, recipes, base_seed=0)}
    later = {s.name: s for s in seed_stages(1, tmp_path, budget, recipes, base_seed=0)}
    assert "--base_model" not in first["seed0/world"].argv and first["seed0/world"].needs == ()
    world = later["seed1/world"]
    assert world.argv[-2:] == ("--base_model", str(tmp_path / "seed0" / "world" / "base_model"))
    assert world.needs == ("seed0/world",)
    assert "--base_model" not in seed_stages(1, tmp_path, budget, recipes)[0].argv  # no base_seed: its own base


def test_every_stage_reads_its_shipped_recipe(tmp_path):
    """Editing configs/toy/<command>.yaml (a student's steps, the teacher's reward) changes the demo."""
    budget = load_budget(True, SMOKE_BUDGETS)
    recipes = configs_dir() / "toy"
    extra = cold_start_stages(0, tmp_path, budget, recipes) + reward_outcome_stages(0, tmp_path, budget, recipes)
    for stage in seed_stages(0, tmp_path, budget, recipes) + extra:
        if stage.argv[0] == "toy":
            assert "--config" not in stage.argv, stage.name  # `rlt toy init` and `graded` run on their defaults
            continue
        command = stage.argv[0].replace("-", "_")
        config = stage.argv[stage.argv.index("--config") + 1]
        assert config == str(recipes / f"{command}.yaml"), stage.name


def test_a_training_stage_continues_the_checkpoints_a_killed_demo_left(tmp_path):
    """A killed demo's training stage leaves a stopped run, which the stage's command refuses without
    ``--resume true`` (tests/commands/test_sft.py::test_sft_trains_saves_and_resumes)."""
    budget = load_budget(True, SMOKE_BUDGETS)
    recipes = configs_dir() / "toy"
    extra = cold_start_stages(0, tmp_path, budget, recipes) + reward_outcome_stages(0, tmp_path, budget, recipes)
    training = [s for s in seed_stages(0, tmp_path, budget, recipes) + extra if s.argv[0] in TRAINING_COMMANDS]
    assert {s.argv[0] for s in training} == TRAINING_COMMANDS
    for stage in training:
        assert stage.argv[stage.argv.index("--resume") + 1] == "true", stage.name
