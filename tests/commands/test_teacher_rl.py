"""`rlt teacher-rl` on tiny local models: a few GRPO steps, killing and resuming, two processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from pinned import logged

from rlt.cli import main as rlt
from rlt.training import TrainingOutputs

ROWS = [{"question": f"What is {a}+{b}?", "solution": str(a + b)} for a in (12, 25, 47, 63) for b in (19, 38)]


@pytest.fixture(scope="module")
def workspace(char_models):
    (char_models / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    return char_models


def _args(workspace, out, *extra):
    return ["teacher-rl", "--model", str(workspace / "teacher"), "--student", str(workspace / "student"),
            "--dataset", str(workspace / "rows.jsonl"), "--output_dir", str(out),
            "--per_device_train_batch_size", "8", "--num_generations", "4", "--max_completion_length", "12",
            "--teacher_system_prompt", "Explain.", "--student_system_prompt", "Think.", "--report_to", "none",
            "--logging_steps", "1", "--save_steps", "2", "--learning_rate", "1e-3", *extra]


def test_grpo_steps_log_every_term_and_checkpoint(workspace, tmp_path, pins):
    """Every term of the reward is logged, each step, and pinned with the loss (tests/data/pinned_recipes.json;
    regenerate: ``git worktree add /tmp/pins-head HEAD && .venv/bin/python tests/pinned.py --src
    /tmp/pins-head/src``). Step 1's reward is the RLT reward at step 0: of completions sampled before any update."""
    out = tmp_path / "rl"
    assert rlt(_args(workspace, out, "--max_steps", "2")) == 0
    logs = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    steps = [entry for entry in logs if "rlt/reward" in entry]
    assert [entry["step"] for entry in steps] == [1, 2]
    for entry in steps:
        assert entry["rewards/rlt_reward/mean"] == pytest.approx(entry["rlt/reward"], abs=1e-4)
    terms = ("reward", "r_ss", "r_kl", "missing_tag_penalty", "kl_mean", "kl_max", "solution_log_prob_min")
    pins.check("test_teacher_rl grpo", logged(out / "metrics.jsonl", (
        "loss", "grad_norm", "kl", "completions/mean_length", *(f"rlt/{term}" for term in terms))))
    assert (out / "checkpoint-2" / "trainer_state.json").exists()
    assert all(entry["rlt/teacher_log_probs_reused"] == 0.0 for entry in steps)  # on-policy: nothing to reuse
    samples = list((out / "completions").glob("*.parquet"))
    assert samples, "explanation samples with their reward terms are saved while training"
    import pandas as pd

    table = pd.read_parquet(samples[0])
    assert {"completion", "rlt/r_ss", "rlt/r_kl"} <= set(table.columns)
    info = json.loads((out / "rlt_run.json").read_text())
    assert info["config"]["reward"]["teacher_temperature"] == info["config"]["training"]["temperature"] == 0.7


def _teacher_terms(workspace, out, *extra) -> tuple[float, list[bool]]:
    """A two-step run whose generation is out of step with optimisation (TRL computes the policy's log-probs):
    per completion, the mean |TRL's log-prob - the fp32 head's| over its explanation, and whether the reward
    reused TRL's."""
    import statistics

    from rlt.commands.teacher_rl import parse, prepare

    parsed = parse(_args(workspace, out, "--max_steps", "2", "--steps_per_generation", "2",
                         "--per_device_train_batch_size", "4", "--save_strategy", "no", *extra)[1:])
    trainer = prepare(*parsed).build()
    reward, captured, gaps, reused = trainer.reward, {}, [], []
    trl_log_probs = trainer._get_per_token_logps_and_entropies

    def capture(model, *args, **kwargs):
        out = trl_log_probs(model, *args, **kwargs)
        if model is trainer.model and not torch.is_grad_enabled() and "old" not in captured:
            captured["old"] = list(out[0].detach())
        return out

    def score(questions, solutions, ids, teacher_log_probs=None):
        reused.append(teacher_log_probs is not None)
        rows = [reward._row(i, q, s, reward.builder.split_completion(list(c)).explanation_ids, True)
                for i, (q, s, c) in enumerate(zip(questions, solutions, ids))]
        for trl, fp32 in zip(captured.pop("old"), reward._teacher_log_probs(rows, None)):
            if len(fp32):
                gaps.append((trl[:len(fp32)].float() - fp32).abs().mean().item())
        return score_completions(questions, solutions, ids, teacher_log_probs)

    score_completions = reward.score_completions
    trainer._get_per_token_logps_and_entropies = capture
    reward.score_completions = score
    trainer.train()
    return statistics.fmean(gaps), reused


def test_the_teacher_term_is_fp32_on_every_path(workspace, tmp_path):
    """TRL's policy log-probs are reused only where they are the fp32 head's; under bf16 they are not, and the
    reward computes the teacher term in fp32 (docs in rlt.grpo.policy_log_probs_are_fp32)."""
    fp32_gap, fp32_reused = _teacher_terms(workspace, tmp_path / "fp32")
    assert fp32_gap < 1e-5 and fp32_reused and all(fp32_reused)
    bf16_gap, bf16_reused = _teacher_terms(workspace, tmp_path / "bf16", "--bf16", "true")
    assert bf16_gap > 1e-4 and bf16_reused and not any(bf16_reused)
    head_gap, head_reused = _teacher_terms(workspace, tmp_path / "head", "--bf16", "true",
                                           "--cast_lm_head_to_fp32", "true")
    assert head_gap > 1e-4 and not any(head_reused)  # the decoder still runs in bf16
    print(f"mean |TRL - fp32 head| per token: fp32 {fp32_gap:.1e} (reused), bf16 {bf16_gap:.1e} (not reused), "
          f"bf16 with cast_lm_head_to_fp32 {head_gap:.1e} (not reused)")


def test_a_folder_holding_another_run_is_never_adopted(workspace, tmp_path, rlt_error, caplog):
    out = TrainingOutputs(tmp_path / "rl")
    assert rlt(_args(workspace, out.folder, "--max_steps", "2")) == 0
    model, metrics = (out.folder / "model.safetensors").read_bytes(), out.metrics.read_text()
    for resume in ([], ["--resume", "true"]):  # another run's checkpoints are not resumed either
        assert "made with other settings (learning_rate: 0.001 → 0.1)" in rlt_error(
            _args(workspace, out.folder, "--max_steps", "1", "--learning_rate", "0.1", *resume))
    assert "--resume true: checkpoint-2 is at step 2, past max_steps=1" in rlt_error(
        _args(workspace, out.folder, "--max_steps", "1", "--resume", "true"))
    longer = rlt_error(_args(workspace, out.folder, "--max_steps", "3"))
    assert ("holds this run, finished (max_steps=2, newest checkpoint checkpoint-2): --resume true continues it, "
            "--overwrite true deletes it and starts again") in longer
    with caplog.at_level("INFO", logger="rlt.training"):
        assert rlt(_args(workspace, out.folder, "--max_steps", "2")) == 0  # the same run: nothing to do
    assert "holds this run, finished: nothing to do" in caplog.text
    assert (out.folder / "model.safetensors").read_bytes() == model and out.metrics.read_text() == metrics
    assert rlt(_args(workspace, out.folder, "--max_steps", "3", "--resume", "true")) == 0  # a longer run
    assert [m["step"] for m in out.read_metrics() if "rlt/reward" in m] == [1, 2, 3]


def test_a_killed_run_resumes_from_its_checkpoint(workspace, tmp_path, kill_and_resume):
    """The kill lands wherever the run is, possibly while it saves: resuming takes the newest whole checkpoint."""
    kill_and_resume(lambda *extra: _args(workspace, tmp_path / "rl", *extra), tmp_path / "rl")


@pytest.mark.parametrize("command", ["teacher-rl", "teacher-sft"])
def test_two_processes_finish_cleanly(command, workspace, tmp_path):
    out = tmp_path / command
    if command == "teacher-rl":
        args = _args(workspace, out, "--max_steps", "2")
    else:
        dataset = tmp_path / "traces.jsonl"
        dataset.write_text("".join(json.dumps({**r, "reasoning_trace": r["question"][8:-1]}) + "\n" for r in ROWS))
        args = ["teacher-sft", "--model", str(workspace / "teacher"), "--dataset", str(dataset), "--output_dir",
                str(out), "--max_steps", "2", "--per_device_train_batch_size", "4", "--report_to", "none",
                "--logging_steps", "1",
                "--teacher_system_prompt", "Explain."]
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    result = subprocess.run(
        [*torchrun, "-m", "rlt.cli", *args],
        env={**os.environ, "HF_HUB_OFFLINE": "1"}, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr and "abort" not in result.stderr.lower()
    assert (out / "model.safetensors").exists()
    # One run of two processes (one claims the folder, one line per step), not two runs side by side.
    steps = [m["step"] for m in TrainingOutputs(out).read_metrics() if "train_runtime" not in m]
    assert steps == [1, 2]


def test_the_progress_bar_shows_the_live_reward_and_its_terms():
    from rlt.grpo import RewardOnProgressBar

    class Bar:
        def set_postfix(self, values, refresh):
            self.values = values

    progress = type("Progress", (), {"training_bar": Bar()})()
    logs = {"rlt/reward": -1.5, "rlt/r_ss": -0.5, "rlt/r_kl": 1.0, "rlt/missing_tag_penalty": 0.0, "loss": 0.1}
    RewardOnProgressBar(progress).on_log(None, None, None, logs=logs)
    assert progress.training_bar.values == {"reward": "-1.500", "r_ss": "-0.500", "r_kl": "1.000",
                                            "missing_tag_penalty": "0.000"}
