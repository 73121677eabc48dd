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
