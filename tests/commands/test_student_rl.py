"""`rlt student-rl` on tiny local models (GRPO on a verifiable reward), and zero-shot transfer to Countdown."""

from __future__ import annotations

import json

import pytest
from conftest import SHARED_DATA
from pinned import logged

from rlt.cli import main as rlt
from rlt.formats import FormatConfig
from rlt.verifiable import VerifiableReward

ROWS = [{"question": f"What is {a}+{b}?", "solution": str(a + b)} for a in (12, 25, 47, 63) for b in (19, 38)]
FMT = FormatConfig(teacher_system_prompt="Explain.", student_system_prompt="Think.")
COUNTDOWN = SHARED_DATA / "countdown" / "test.parquet"


@pytest.fixture(scope="module")
def workspace(char_models):
    (char_models / "rl_rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    return char_models


def _args(workspace, out, *extra):
    return ["student-rl", "--model", str(workspace / "student"), "--dataset", str(workspace / "rl_rows.jsonl"),
            "--output_dir", str(out), "--match", "exact", "--format_coef", "0.5",
            "--per_device_train_batch_size", "8", "--num_generations", "4", "--max_completion_length", "12",
            "--teacher_system_prompt", "Explain.", "--student_system_prompt", "Think.", "--report_to", "none",
            "--logging_steps", "1", "--save_steps", "2", "--learning_rate", "1e-3", *extra]


def test_the_reward_is_the_checked_answer_plus_the_format_term():
    reward = VerifiableReward(FMT, "exact", format_coef=0.5)
    right = "<|begin_of_thought|>12+19=31<|end_of_thought|>\n\n<|begin_of_solution|>31<|end_of_solution|>"
    logged = {}
    rewards = reward(prompts=["p"] * 4, completions=[right, right.replace(">31<", ">30<"), "31", ""],
                     reference=["31"] * 4, log_metric=logged.__setitem__)
    assert rewards == [1.5, 0.5, 0.0, 0.0]  # "31" alone has no solution section: no answer
    assert logged == {"student/reward": 0.5, "student/correct": 0.25, "student/format": 0.5, "student/no_answer": 0.5}


def test_grpo_steps_log_the_terms_and_checkpoint(workspace, tmp_path, pins):
    """The reward's terms are logged each step and pinned with the loss and the completions' lengths and entropy
    (tests/data/pinned_recipes.json; regenerate: ``git worktree add /tmp/pins-head HEAD && .venv/bin/python
    tests/pinned.py --src /tmp/pins-head/src``)."""
    out = tmp_path / "rl"
    assert rlt(_args(workspace, out, "--max_steps", "2")) == 0
    logs = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    steps = [entry for entry in logs if "student/reward" in entry]
    assert [entry["step"] for entry in steps] == [1, 2]
    for entry in steps:
        assert entry["rewards/verifiable_reward/mean"] == pytest.approx(entry["student/reward"], abs=1e-6)
    terms = ("reward", "correct", "format", "no_answer")
    pins.check("test_student_rl grpo", logged(out / "metrics.jsonl", (
        "loss", "grad_norm", "entropy", "completions/mean_length", *(f"student/{term}" for term in terms))))
    assert (out / "checkpoint-2" / "trainer_state.json").exists() and (out / "model.safetensors").exists()
    assert json.loads((out / "rlt_run.json").read_text())["command"] == "student-rl"


def test_a_killed_run_resumes_from_its_checkpoint(workspace, tmp_path, kill_and_resume):
    kill_and_resume(lambda *extra: _args(workspace, tmp_path / "rl", *extra), tmp_path / "rl")


@pytest.mark.skipif(not COUNTDOWN.exists(), reason="needs ../shared/data")
def test_zero_shot_transfer_to_countdown_end_to_end(workspace, tmp_path):
    """A teacher explains Countdown rows (the solution given, as in the paper) → a student is distilled from
    its explanations → it is evaluated on Countdown puzzles, any right expression counting."""
    common = ["--teacher_system_prompt", "Explain.", "--student_system_prompt", "Think."]
    assert rlt(["distill", "--teacher", str(workspace / "teacher"), "--dataset", str(COUNTDOWN), "--limit", "8",
                "--output_dir", str(tmp_path / "distill"), "--max_new_tokens", "24", *common]) == 0
    rows = [json.loads(line) for line in (tmp_path / "distill" / "distilled.jsonl").read_text().splitlines()]
    assert len(rows) == 8 and all(" = " in r["conversations"][1]["value"] for r in rows)  # expression = target
    assert rlt(["student-sft", "--model", str(workspace / "student"), "--dataset",
                str(tmp_path / "distill" / "distilled.jsonl"), "--output_dir", str(tmp_path / "student"),
                "--max_steps", "2", "--per_device_train_batch_size", "4", "--report_to", "none", *common]) == 0
    assert rlt(["evaluate", "--model", str(tmp_path / "student"), "--dataset", str(COUNTDOWN), "--limit", "4",
                "--output_dir", str(tmp_path / "eval"), "--match", "countdown", "--max_new_tokens", "16",
                "--num_samples", "2", *common]) == 0
    summary = json.loads((tmp_path / "eval" / "summary.json").read_text())
    results = [json.loads(line) for line in (tmp_path / "eval" / "results.jsonl").read_text().splitlines()]
    assert summary["problems"] == 4 and summary["match"] == "countdown" and 0 <= summary["pass@1"] <= 1
    assert all(" from [" in r["reference"] for r in results)
