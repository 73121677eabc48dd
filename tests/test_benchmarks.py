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
