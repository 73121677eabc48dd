"""Benchmarks run in their smoke mode (tiny budgets, seconds), so that a change that breaks one fails here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.mark.slow
def test_grpo_step_benchmark_runs():
    result = subprocess.run([sys.executable, str(BENCHMARKS / "grpo_step.py"), "--smoke"], capture_output=True,
                            text=True, timeout=600, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1].startswith("grpo step benchmark: ")


@pytest.mark.slow
def test_answer_checks_benchmark_runs():
    from conftest import SHARED_DATA

    if not (SHARED_DATA / "aime24").exists():
        pytest.skip("needs ../shared/data")
    result = subprocess.run([sys.executable, str(BENCHMARKS / "answer_checks.py"), "--smoke",
                             "--shared_data", str(SHARED_DATA)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1].startswith("answer check benchmark: Sky-T1 ")


def _smoke(script: str, *flags: str) -> str:
    """``benchmarks/<script> --smoke <flags>``'s last line of output, once it exited 0."""
    result = subprocess.run([sys.executable, str(BENCHMARKS / script), "--smoke", *flags], capture_output=True,
                            text=True, timeout=600, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip().splitlines()[-1]


def _needs_sky_t1() -> None:
    from conftest import SHARED_DATA

    if not (SHARED_DATA / "reasoning_traces_sky_t1").exists():
        pytest.skip("needs ../shared/data (Sky-T1 traces)")


@pytest.mark.slow
def test_reward_benchmark_runs():
    _needs_sky_t1()
    assert _smoke("reward.py").startswith("reward benchmark: speedup ")


@pytest.mark.slow
def test_gpu_check_benchmark_runs(tmp_path):
    _needs_sky_t1()  # --prepare: its tokenizer and rows, as gpu_check.sh prepare writes them
    assert _smoke("gpu_check.py", "--prepare", "--data", str(tmp_path)).startswith("gpu check: reward at 256 tokens ")


# The demo's benchmarks run one smoke demo (tests/data/demo_smoke_budgets.yaml): benchmarks/demo.py runs it, and
# toy.py and cold_start.py run their pipelines in its folder, where the demo's stages are done (the same commands),
# so that each runs only what is its own (toy: the scoring of every explanation kind; cold start: the cold start and
# the transfer to another task).
@pytest.fixture(scope="module")
def smoke_demo(tmp_path_factory) -> tuple[Path, str]:
    folder = tmp_path_factory.mktemp("demo_benchmark")
    return folder / "quick", _smoke("demo.py", "--output_dir", str(folder))


@pytest.mark.slow
def test_demo_benchmark_runs(smoke_demo):
    folder, last_line = smoke_demo
    assert last_line.startswith("demo benchmark: quick ")
    assert (folder / "report" / "summary.json").is_file()


@pytest.mark.slow
def test_toy_benchmark_runs(smoke_demo):
    assert _smoke("toy.py", "--output_dir", str(smoke_demo[0])).startswith("toy benchmark: answer-only ")


@pytest.mark.slow
def test_cold_start_benchmark_runs(smoke_demo):
    assert _smoke("cold_start.py", "--demo_dir", str(smoke_demo[0])).startswith(
        "cold start benchmark: warm-up student ")
