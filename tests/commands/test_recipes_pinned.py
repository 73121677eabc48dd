"""The toy recipes, `rlt <command> --config configs/toy/<command>.yaml`, on the session's tiny toy world (400
questions, an untrained base model), pinned: the training loss of each step of teacher-sft and student-sft,
and for teacher-rl the RLT reward and its terms at step 0, and the loss after a step; and the norm of each
trained model's weights.

What the recipes set (learning rates and schedules, weight decay, max_length, beta and the reference
model's sync, temperatures, completion lengths, the reward's format) reaches these figures; the tests
override only the budget (steps, batch of the RL recipes) and logging. A change of how defaults are layered
that changes none of them keeps every figure; one that changes any moves a loss, a reward, a count or the
weights' norm beyond its tolerance (tests/pinned.py: rtol 1e-3, the weights' norm 1e-6, counts exact, and why;
measured there: the recipes' weight decay shows in the weights' norm only).

The figures are in tests/data/pinned_recipes.json; regenerate them from the committed code with
``git worktree add /tmp/pins-head HEAD && .venv/bin/python tests/pinned.py --src /tmp/pins-head/src``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pinned import WEIGHTS_NORM, logged, weights_norm

import rlt
from rlt.cli import main as run
from rlt.training import TrainingOutputs

# The recipes of the checkout rlt is imported from (tests/pinned.py regenerates from another one).
TOY_RECIPES = Path(rlt.__file__).resolve().parents[2] / "configs" / "toy"

LOGGING = ("--logging_steps", "1", "--save_strategy", "no", "--disable_tqdm", "true")
SFT = ("loss", "grad_norm", "mean_token_accuracy", "num_tokens", "learning_rate")
GRPO = ("loss", "grad_norm", "learning_rate", "reward", "reward_std", "kl", "entropy", "num_tokens",
        "completions/mean_length", "completions/clipped_ratio")
RLT_TERMS = ("rlt/reward", "rlt/r_ss", "rlt/r_kl", "rlt/missing_tag_penalty", "rlt/kl_mean", "rlt/kl_max",
             "rlt/solution_log_prob_mean", "rlt/found_end_tag", "rlt/explanation_tokens")
STUDENT_TERMS = ("student/reward", "student/correct", "student/format", "student/no_answer")


@pytest.fixture(scope="module")
def recipes(toy_world, tmp_path_factory):
    """The four recipes chained as in the demo, on a few steps: teacher-sft on the warm-up rows and
    student-sft on the gold rows (3 steps of the recipes' batch of 64); teacher-rl from that teacher with that
    student as judge, and student-rl from that student (2 steps of 2 questions × 8 samples)."""
    root = tmp_path_factory.mktemp("recipes")
    runs = {
        "teacher-sft": ("--model", toy_world.base_model, "--dataset", toy_world.teacher_warmup, "--max_steps", "3"),
        "student-sft": ("--model", toy_world.base_model, "--dataset", toy_world.train, "--max_steps", "3"),
        "teacher-rl": ("--model", root / "teacher-sft", "--student", root / "student-sft", "--dataset",
                       toy_world.train, "--max_steps", "2", "--per_device_train_batch_size", "16"),
        "student-rl": ("--model", root / "student-sft", "--dataset", toy_world.train, "--max_steps", "2",
                       "--per_device_train_batch_size", "16"),
    }
    for command, argv in runs.items():
        config = TOY_RECIPES / f"{command.replace('-', '_')}.yaml"
        assert config.is_file(), config
        assert run([str(a) for a in (command, "--config", config, *argv, "--output_dir", root / command,
                                     *LOGGING)]) == 0
    return {command: root / command for command in runs}


def _figures(folder, names) -> dict[str, dict[str, float]]:
    """The run's logged figures, and the norm of the weights it saved at the end."""
    figures = logged(TrainingOutputs(folder).metrics, names)
    figures["end"][WEIGHTS_NORM] = weights_norm(folder)
    return figures


@pytest.mark.parametrize("command", ["teacher-sft", "student-sft"])
def test_sft_recipe_losses_are_pinned(command, recipes, pins):
    figures = _figures(recipes[command], SFT)
    assert list(figures) == ["step 1", "step 2", "step 3", "end"]
    pins.check(f"recipe {command}", figures)


def test_teacher_rl_recipe_reward_at_step_0_and_loss_are_pinned(recipes, pins):
    """Step 1's reward is that of the completions sampled before the first update: the RLT reward at step 0."""
    figures = _figures(recipes["teacher-rl"], GRPO + RLT_TERMS)
    assert list(figures) == ["step 1", "step 2", "end"]
    pins.check("recipe teacher-rl", figures)


def test_student_rl_recipe_is_pinned(recipes, pins):
    """A student after 3 steps of SFT answers nothing right: its reward is 0 and GRPO's loss and gradient are 0.
    What is pinned is the sampling the recipe sets (lengths, clipping, the completions' entropy)."""
    figures = _figures(recipes["student-rl"], GRPO + STUDENT_TERMS)
    assert list(figures) == ["step 1", "step 2", "end"]
    pins.check("recipe student-rl", figures)
