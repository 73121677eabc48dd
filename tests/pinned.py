"""Figures pinned from runs of the committed code: training losses, gradient norms, rewards, as torchtune's
recipe tests pin theirs. They live in one file, tests/data/pinned_recipes.json, one entry per run.

Regenerate them from the committed code, not from a tree being edited:

    git worktree add /tmp/pins-head HEAD
    .venv/bin/python tests/pinned.py --src /tmp/pins-head/src

which runs the pinned tests (PINNED_TESTS) with ``--update-pins`` and ``PYTHONPATH=<src>``, after checking that
``rlt`` is imported from there (the venv's editable install points at this checkout's src/). The tests
themselves only read the file; ``pytest --update-pins`` on any of them rewrites their entries. Where this
checkout's tests already follow source changes not yet committed (an import moved), run them from the worktree
instead: copy tests/ there, ``cd /tmp/pins-head && PYTHONPATH=src .venv/bin/python -m pytest --update-pins
TESTS``, and copy tests/data/pinned_recipes.json back.

Tolerance. CPU float32 is deterministic run to run on one machine, but not bit-identical across CPUs (another
vector width, another blocking of a matmul, another order of a sum). Measured with the recording machine's
figures (AMD EPYC, AVX-512, torch 2.13 CPU, 2 threads) as the pins:
- 1 thread (OMP_NUM_THREADS=1) instead of 2: every figure bit-identical (the toy models' matmuls are too
  small to be split between threads);
- the kernels of another CPU, emulated (ATEN_CPU_CAPABILITY=avx2 or =default, MKL_ENABLE_INSTRUCTIONS=AVX2,
  ONEDNN_MAX_CPU_ISA=AVX2): every count identical (the same tokens sampled); the largest relative deviation
  of a measured figure 7e-5 (a KL term); the GRPO losses, which are sums that cancel to about 1e-4 (or to 0
  at an on-policy first step), moved by at most 9.4e-7 in absolute terms (0.2% of the step-2 loss).
- the norm of the trained weights (WEIGHTS_NORM): 2e-10 relative under the emulated kernels.
So figures compare with RTOL 1e-3 (14 times the worst relative deviation) or ATOL 5e-6 (5 times the worst
absolute one, and 17 times smaller than the step-2 GRPO losses pinned, so a change of beta still shows),
counts (tokens, completions' lengths, shares of completions with a tag or an answer) exactly, and the
weights' norm with WEIGHTS_RTOL 1e-6 (5000 times its drift). A change of behaviour that a refactor could make
(a default, a learning rate or schedule, one token more or less in a record) moves a loss in its third digit
or before, or a count; the recipes' weight decay (0.1 → 0) moves no loss by 1e-3 in 3 steps, but the
weights' norm by 5.8e-4 relative.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent
PINS = TESTS / "data" / "pinned_recipes.json"
REGENERATE = ".venv/bin/python tests/pinned.py --src /tmp/pins-head/src (after git worktree add /tmp/pins-head HEAD)"
RTOL = 1e-3
WEIGHTS_RTOL = 1e-6
WEIGHTS_NORM = "weights/norm"  # the L2 norm of a trained model's matrices (float64), see weights_norm
ATOL = 5e-6  # for the GRPO losses, zero up to rounding at an on-policy first step (see the module's docstring)
# The tests whose runs are pinned; `python tests/pinned.py` reruns them with --update-pins.
PINNED_TESTS = (
    "tests/commands/test_recipes_pinned.py",
    "tests/commands/test_sft.py::test_sft_trains_saves_and_resumes",
    "tests/commands/test_teacher_rl.py::test_grpo_steps_log_every_term_and_checkpoint",
    "tests/commands/test_student_rl.py::test_grpo_steps_log_the_terms_and_checkpoint",
    "tests/commands/test_demo.py::test_quick_demo_reports_the_four_accuracies",
)
COUNT_PREFIXES = ("accuracy/", "teacher_kinds/", "num_tokens", "completions/", "student/", "frac_reward_zero_std",
                  "rlt/found_end_tag", "rlt/missing_tag_penalty", "rlt/solution_tokens", "rlt/explanation_tokens",
                  "rlt/truncated", "rlt/teacher_log_probs_reused")


def is_count(name: str) -> bool:
    """Whether a metric counts tokens or completions (compared exactly) rather than measures a float."""
    return name.startswith(COUNT_PREFIXES)


def weights_norm(folder: Path) -> float:
    """The L2 norm, in float64, of the matrices (embeddings, projections; not the norms' scales or biases, which
    weight decay leaves alone) of the model saved in ``folder``."""
    from safetensors.torch import load_file

    weights = load_file(folder / "model.safetensors")
    return math.sqrt(sum(float(w.double().square().sum()) for w in weights.values() if w.dim() >= 2))


def logged(metrics: Path, names: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """The metrics ``names`` of each step a run logged in its metrics.jsonl, as ``{"step N": {name: value}}``,
    and its closing ``train_loss`` as ``{"end": {"train_loss": value}}``."""
    figures = {}
    for line in metrics.read_text().splitlines():
        entry = json.loads(line)
        if "train_runtime" in entry:
            figures["end"] = {"train_loss": entry["train_loss"]}
        else:
            figures[f"step {entry['step']}"] = {name: entry[name] for name in names if name in entry}
    return figures


class Pins:
    """Checks a run's figures against its entry of PINS, or (``update``) records them there."""

    def __init__(self, path: Path = PINS, update: bool = False):
        self.path, self.update = path, update
        self.pinned = json.loads(path.read_text()) if path.exists() else {}
        self.recorded: dict[str, dict] = {}
        self.deviations: list[tuple[float, str]] = []  # (relative deviation, where), for the session's report

    def check(self, key: str, observed: dict[str, dict[str, float]]) -> None:
        if self.update:
            self.recorded[key] = observed
            return
        assert key in self.pinned, f"no pinned figures for {key!r} in {self.path}: regenerate them with {REGENERATE}"
        expected = self.pinned[key]
        assert set(observed) == set(expected), f"{key}: logged {sorted(observed)}, pinned {sorted(expected)}"
        wrong = []
        for where, figures in expected.items():
            assert set(observed[where]) == set(figures), f"{key} {where}: {sorted(observed[where])}, {sorted(figures)}"
            for name, pin in figures.items():
                value = observed[where][name]
                if is_count(name):
                    ok = value == pin
                elif name == WEIGHTS_NORM:
                    ok = math.isclose(value, pin, rel_tol=WEIGHTS_RTOL)
                else:
                    ok = math.isclose(value, pin, rel_tol=RTOL, abs_tol=ATOL)
                    if abs(pin) >= 100 * ATOL:
                        self.deviations.append((abs(value - pin) / abs(pin), f"{key} {where} {name}"))
                if not ok:
                    wrong.append(f"{where} {name}: {value!r}, pinned {pin!r}")
        assert not wrong, (f"{key} moved from its pinned figures (rtol {RTOL}, {WEIGHTS_NORM} {WEIGHTS_RTOL}, counts "
                           "exact):\n  " + "\n  ".join(wrong)
                           + f"\nIf the change is intended, regenerate them from the committed code: {REGENERATE}")

    def save(self) -> None:
        if self.update and self.recorded:
            merged = {**self.pinned, **self.recorded}
            self.path.write_text(json.dumps(dict(sorted(merged.items())), indent=1) + "\n")

    def report(self) -> str | None:
        """The largest relative deviation from the pins seen this session (to size RTOL), or None. Figures whose
        pins are near zero (under 100 ATOL) are left out: ATOL bounds those."""
        if not self.deviations:
            return None
        worst, where = max(self.deviations)
        return f"pinned figures: {len(self.deviations)} checked, largest relative deviation {worst:.1e} ({where})"


def main() -> int:
    parser = argparse.ArgumentParser(description="Rewrite tests/data/pinned_recipes.json from the code in --src.")
    parser.add_argument("--src", required=True, type=Path, help="the src/ folder of a checkout of the committed code")
    args, pytest_args = parser.parse_known_args()  # the rest goes to pytest (such as -k, --durations=0)
    src = args.src.resolve()
    env = {**os.environ, "PYTHONPATH": str(src), "HF_HUB_OFFLINE": "1"}
    where = subprocess.run([sys.executable, "-c", "import rlt; print(rlt.__file__)"], env=env, capture_output=True,
                           text=True, check=True).stdout.strip()
    if not Path(where).resolve().is_relative_to(src):
        print(f"rlt is imported from {where}, not from {src}", file=sys.stderr)
        return 1
    print(f"rlt from {where}")
    root = TESTS.parent
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--update-pins", "-q",
                           *PINNED_TESTS, *pytest_args], env=env, cwd=root).returncode


if __name__ == "__main__":
    sys.exit(main())
