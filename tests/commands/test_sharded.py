"""A student sharded by FSDP2 over 2 CPU processes (torchrun, gloo): the reward equals the unsharded one, and
teacher-rl trains with it (tests/distributed/sharded_student.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "distributed" / "sharded_student.py"
ROWS = [{"question": f"What is {a}+{b}?", "solution": str(a + b)} for a in (12, 25, 47, 63) for b in (19, 38)]


def test_a_sharded_student_scores_as_the_whole_one_and_teacher_rl_trains(char_models, tmp_path):
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                             str(SCRIPT), str(char_models), str(rows), str(tmp_path)],
                            env={**os.environ, "HF_HUB_OFFLINE": "1"}, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    assert [r["rows"] for r in ranks] == [3, 7] and all(r["lockstep"] for r in ranks)
    assert all(r["max_reward_gap"] <= 1e-5 for r in ranks), ranks
    assert all(len(r["rewards"]) == 2 for r in ranks)
    print("sharded vs whole student, max |reward gap| per rank:", [f"{r['max_reward_gap']:.1e}" for r in ranks])
