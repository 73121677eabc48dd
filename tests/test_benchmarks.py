"""Benchmarks run in their smoke mode (tiny budgets, seconds), so that a change that breaks one fails here."""

from __future__ import annotations

import pytest
from conftest import run_benchmark, shared_data


@pytest.mark.slow
def test_grpo_step_benchmark_runs():
    assert run_benchmark("grpo_step.py").startswith("grpo step benchmark: ")


@pytest.mark.slow
def test_answer_checks_benchmark_runs():
    assert run_benchmark("answer_checks.py", "--shared_data", str(shared_data("aime24").parent)).startswith(
        "answer check benchmark: Sky-T1 ")


@pytest.mark.slow
def test_reward_benchmark_runs():
    shared_data("reasoning_traces_sky_t1")
    assert run_benchmark("reward.py").startswith("reward benchmark: speedup ")


@pytest.mark.slow
def test_gpu_check_benchmark_runs(tmp_path):
    shared_data("reasoning_traces_sky_t1")  # --prepare: its tokenizer and rows, as gpu_check.sh prepare writes them
    line = run_benchmark("gpu_check.py", "--prepare", "--data", str(tmp_path))
    assert line.startswith("gpu check: reward at 256 tokens ")


@pytest.mark.slow
def test_demo_benchmark_runs(smoke_demo):
    """The smoke demo (tests/conftest.py) is the benchmark's run."""
    assert smoke_demo.benchmark_line.startswith("demo benchmark: quick ")
    assert (smoke_demo.folder / "report" / "summary.json").is_file()


@pytest.mark.slow
def test_toy_benchmark_runs(smoke_demo):
    assert run_benchmark("toy.py", "--output_dir", str(smoke_demo.folder)).startswith("toy benchmark: answer-only ")


@pytest.mark.slow
def test_cold_start_benchmark_runs(smoke_demo):
    assert run_benchmark("cold_start.py", "--demo_dir", str(smoke_demo.folder)).startswith(
        "cold start benchmark: warm-up student ")
