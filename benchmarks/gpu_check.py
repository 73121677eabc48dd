"""GPU check: the RLT reward and teacher-rl at the paper's scale, on Qwen2.5's real tokenizer (transformers only).

Run by ``benchmarks/gpu_check.sh`` on one H100/H200 (about 8 minutes). Two parts:

1. **The reward at 2k/8k/16k explanation tokens**, on a Qwen2.5-7B-shaped random teacher and student in bf16
   (the paper's judge is Bespoke-Stratos-7B): rlt's reward against the naive full-vocabulary computation
   (time, peak memory), and each one's |Δ| from rlt's reward with the same models in fp32.
2. **Five teacher-rl steps** of a Qwen2.5-0.5B-shaped random pair (bf16, transformers generation):
   seconds per step and the reward's share of it.

Explanations are a real Sky-T1 trace repeated to length, for a real MATH-500 question and solution.

    python benchmarks/gpu_check.py --data .gpu_check [--smoke]   # --smoke: tiny shapes, any device, half a minute
    python benchmarks/gpu_check.py --data DIR --prepare [--smoke]   # DIR's tokenizer and rows (../shared/data)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "benchmarks")]

from fixtures.qwen2_5 import (  # noqa: E402
    EMBEDDING_ROWS,
    load_qwen2_5_tokenizer,
    save_qwen2_5_model,
    save_qwen2_5_tokenizer,
)
from reward import naive_reward  # noqa: E402
from transformers import Qwen2Config, Qwen2ForCausalLM, TrainerCallback  # noqa: E402

from rlt.data import load_examples  # noqa: E402
from rlt.formats import SequenceBuilder  # noqa: E402
from rlt.reward import RewardConfig, RLTReward  # noqa: E402
from rlt.toy import ModelSize  # noqa: E402

QWEN2_5_7B = ModelSize(hidden_size=3584, num_layers=28, num_heads=28, num_kv_heads=4, intermediate_size=18944,
                       max_position_embeddings=32768, vocab_size=152064, tie_word_embeddings=False)
SMOKE = ModelSize(hidden_size=64, num_layers=2, num_heads=4, num_kv_heads=2, intermediate_size=128,
                  max_position_embeddings=4096, vocab_size=EMBEDDING_ROWS)


def prepare_data(data: Path) -> None:
    """``data``'s Qwen2.5 tokenizer and its first 64 Sky-T1 rows with a trace (``gpu_check.sh prepare``, on the dev
    machine: it reads ../shared/data, or RLT_SHARED_DATA)."""
    from conftest import SHARED_DATA  # the tests' one definition (needs pytest: not on the GPU machine)

    save_qwen2_5_tokenizer(data / "tokenizer")
    traces = next(iter(sorted((SHARED_DATA / "reasoning_traces_sky_t1").rglob("*.jsonl"))))
    rows = [e.to_dict() for e in load_examples(traces, on_error="skip", require_trace=True, limit=64).items]
    (data / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _measured(fn, *args):
    """(result, seconds, peak bytes above the start) of ``fn(*args)``."""
    _sync()
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    start = time.perf_counter()
    with torch.no_grad():
        result = fn(*args)
    _sync()
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated() - base if torch.cuda.is_available() else 0
    return result, seconds, peak


def _random_model(shape: ModelSize, tokenizer, seed: int, dtype: torch.dtype, device: str) -> Qwen2ForCausalLM:
    config = Qwen2Config(vocab_size=shape.vocab_size, hidden_size=shape.hidden_size,
                         intermediate_size=shape.intermediate_size, num_hidden_layers=shape.num_layers,
                         num_attention_heads=shape.num_heads, num_key_value_heads=shape.num_kv_heads,
                         max_position_embeddings=shape.max_position_embeddings,
                         tie_word_embeddings=shape.tie_word_embeddings, pad_token_id=tokenizer.pad_token_id,
                         eos_token_id=tokenizer.eos_token_id, attn_implementation="sdpa")
    torch.manual_seed(seed)
    default = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = Qwen2ForCausalLM(config)
    finally:
        torch.set_default_dtype(default)
    return model.eval().requires_grad_(False)


def reward_at_lengths(data: Path, lengths: list[int], shape: ModelSize, device: str) -> list[dict]:
    tokenizer = load_qwen2_5_tokenizer(data / "tokenizer")
    row = json.loads((data / "rows.jsonl").read_text().splitlines()[0])
    builder = SequenceBuilder(tokenizer)
    trace = builder.encode(row["reasoning_trace"])
    tail = builder.encode(builder.fmt.end_explanation) + [tokenizer.eos_token_id]
    items = [{"question": row["question"], "solution": row["solution"],
              "completion_ids": (trace * (n // len(trace) + 1))[:n] + tail} for n in lengths]
    models = [_random_model(shape, tokenizer, seed, torch.bfloat16, device) for seed in (1, 2)]
    config = RewardConfig()

    def rlt_reward(item: dict) -> float:
        reward = RLTReward(*models, tokenizer, config)
        return reward.score_completions([item["question"]], [item["solution"]], [item["completion_ids"]])[0].reward

    results = []
    for item in items:
        ours, ours_s, ours_peak = _measured(rlt_reward, item)
        naive, naive_s, naive_peak = _measured(lambda it: naive_reward(*models, builder, [it], config)[0].reward, item)
        results.append({"tokens": len(item["completion_ids"]) - len(tail), "rlt_s": ours_s, "naive_s": naive_s,
                        "rlt_peak": ours_peak, "naive_peak": naive_peak, "rlt": ours, "naive": naive})
        print(f"  {results[-1]['tokens']:>6} tokens: rlt {ours_s:.2f} s, {ours_peak / 2**30:.1f} GiB; "
              f"naive {naive_s:.2f} s, {naive_peak / 2**30:.1f} GiB", flush=True)
    torch.backends.cuda.matmul.allow_tf32 = False  # a true fp32 reference
    for model in models:
        model.float()
    for item, result in zip(items, results):
        result["fp32"] = _measured(rlt_reward, item)[0]
    return results


class _StepClock(TrainerCallback):
    def __init__(self):
        self.steps: list[float] = []

    def on_step_begin(self, args, state, control, **kwargs):
        _sync()
        self._start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        _sync()
        self.steps.append(time.perf_counter() - self._start)


def teacher_rl_steps(data: Path, size: str | ModelSize, steps: int, flags: list[str]) -> dict:
    from rlt.commands.teacher_rl import parse, prepare

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name, seed in (("teacher", 1), ("student", 2)):
            save_qwen2_5_model(root / name, data / "tokenizer", seed=seed, size=size)
        args = parse(["--model", str(root / "teacher"), "--student", str(root / "student"),
                      "--dataset", str(data / "rows.jsonl"), "--output_dir", str(root / "rl"),
                      "--max_steps", str(steps), "--logging_steps", "1", "--save_strategy", "no",
                      "--report_to", "none", *flags])
        trainer = prepare(*args).build()
        clock, reward_seconds, original = _StepClock(), [], trainer.rlt_reward

        def timed_reward(**kwargs):
            _sync()
            start = time.perf_counter()
            rewards = original(**kwargs)
            _sync()
            reward_seconds.append(time.perf_counter() - start)
            return rewards

        trainer.rlt_reward = timed_reward
        trainer.reward_funcs[0] = timed_reward
        trainer.add_callback(clock)
        trainer.train()
    measured = slice(1, None) if steps > 1 else slice(None)  # the first step warms kernels up
    per_step = sum(clock.steps[measured]) / len(clock.steps[measured])
    share = sum(reward_seconds[measured]) / sum(clock.steps[measured])
    return {"seconds_per_step": per_step, "reward_share": share, "steps": clock.steps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT / ".gpu_check", help="Folder made by gpu_check.sh prepare.")
    parser.add_argument("--smoke", action="store_true", help="Tiny shapes and lengths: checks the script anywhere.")
    parser.add_argument("--prepare", action="store_true",
                        help="Write --data's tokenizer and rows first; then stop, unless --smoke.")
    args = parser.parse_args()
    if args.prepare:
        prepare_data(args.data)
        if not args.smoke:
            return
    device = "cuda" if torch.cuda.is_available() else "cpu"
    smoke = args.smoke or device == "cpu"
    lengths = [64, 256] if smoke else [2048, 8192, 16384]
    print(f"device {torch.cuda.get_device_name() if device == 'cuda' else 'cpu'}, torch {torch.__version__}"
          f"{', smoke shapes' if smoke else ''}", flush=True)

    print("1. RLT reward, Qwen2.5-7B-shaped teacher and student in bf16:", flush=True)
    rewards = reward_at_lengths(args.data, lengths, SMOKE if smoke else QWEN2_5_7B, device)
    for r in rewards:
        print(f"  {r['tokens']:>6} tokens: speedup {r['naive_s'] / r['rlt_s']:.1f}x, peak memory "
              f"{r['rlt_peak'] / max(r['naive_peak'], 1):.2f}x, |Δ| vs fp32: rlt {abs(r['rlt'] - r['fp32']):.1e}, "
              f"naive {abs(r['naive'] - r['fp32']):.1e}")

    print("2. teacher-rl, Qwen2.5-0.5B-shaped pair, bf16, transformers generation:", flush=True)
    flags = (["--per_device_train_batch_size", "2", "--num_generations", "2", "--max_completion_length", "8",
              "--bf16", "false"] if smoke else
             ["--per_device_train_batch_size", "16", "--num_generations", "8", "--max_completion_length", "512",
              "--bf16", "true", "--activation_checkpointing", "true"])
    rl = teacher_rl_steps(args.data, SMOKE if smoke else "qwen2.5-0.5b", 1 if smoke else 5, flags)
    print(f"  {rl['seconds_per_step']:.2f} s/step, reward {100 * rl['reward_share']:.0f}% of it "
          f"(steps: {', '.join(f'{s:.1f}' for s in rl['steps'])} s)")
    worst = rewards[-1]
    print(f"gpu check: reward at {worst['tokens']} tokens {worst['naive_s'] / worst['rlt_s']:.1f}x faster, "
          f"{worst['rlt_peak'] / max(worst['naive_peak'], 1):.2f}x memory, |Δ| vs fp32 "
          f"{abs(worst['rlt'] - worst['fp32']):.1e} (naive {abs(worst['naive'] - worst['fp32']):.1e}); "
          f"teacher-rl {rl['seconds_per_step']:.1f} s/step, reward {100 * rl['reward_share']:.0f}%")


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
