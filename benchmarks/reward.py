"""Benchmark: rlt's RLT reward against the naive computation, same models, same completions.

Naive = what the official code does: one completion at a time, the full-vocabulary logits of the
whole teacher and student sequences, a log-softmax over them, then a gather. rlt's reward batches
completions, runs each prompt's shared prefix once, and projects only the span positions through
the LM head in fp32 chunks.

Each method runs in a fresh process on models loaded from disk (a ~20M-parameter Qwen2 shape and a
byte-level BPE built locally), so neither inherits the other's allocator state. Peak memory is the
rise of the process's resident set (CPU; reset with /proc/self/clear_refs) or of allocated CUDA
memory during the scoring call, above what the loaded models already hold.

    python benchmarks/reward.py [--shape qwen2-20m|small] [--completions 64] [--prompts 8]
                                [--explanation_tokens 300] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from rlt.formats import SequenceBuilder
from rlt.modeling import load_causal_lm, load_tokenizer
from rlt.reward import RewardConfig, RewardTerms, RLTReward, combine_terms
from rlt.toy import MODEL_SIZES, ModelSize, build_bpe_tokenizer, build_causal_lm

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

SHAPES = {
    # Qwen2's architecture at ~21M parameters: its 151,936-row vocabulary (tied), GQA, head_dim 64,
    # MLP 5.5x wide. The tokenizer is a local 8000-token BPE; the other rows are never sampled, as
    # Qwen's own padded rows are not, but every one of them costs in a full-vocabulary log-softmax.
    "qwen2-20m": ModelSize(hidden_size=128, num_layers=6, num_heads=2, num_kv_heads=1, intermediate_size=704,
                           max_position_embeddings=4096, vocab_size=151936),
    # The same parameter count spent on the body instead (8000-token vocabulary).
    "small": MODEL_SIZES["small"],
}


# Workload --------------------------------------------------------------------------------------

def _gsm8k_rows() -> list[dict]:
    path = SHARED_DATA / "gsm8k" / "train.jsonl"
    if path.exists():
        return [json.loads(line) for line in path.read_text().splitlines()[:4000]]
    return [{"question": f"What is {a}+{b}?", "answer": f"{a}+{b}={a + b}\n#### {a + b}"}
            for a in range(100) for b in range(40)]


def build_workload(workdir: Path, shape: str, prompts: int, completions: int, explanation_tokens: int) -> None:
    """Tokenizer, teacher, student and the completions to score, written to ``workdir``."""
    rows = _gsm8k_rows()
    tokenizer = build_bpe_tokenizer([r["question"] + "\n" + r["answer"] for r in rows], vocab_size=8000)
    for name, seed in (("teacher", 1), ("student", 2)):
        model = build_causal_lm(tokenizer, SHAPES[shape], seed=seed)
        model.save_pretrained(workdir / name)
        tokenizer.save_pretrained(workdir / name)
    builder = SequenceBuilder(tokenizer)
    items = []
    per_prompt = completions // prompts
    for p in range(prompts):
        row = rows[p]
        solution = row["answer"].split("####")[-1].strip()
        for c in range(per_prompt):
            # Explanations of about `explanation_tokens` tokens: worked answers of neighbouring rows.
            text, k = "", 0
            while len(builder.encode(text)) < explanation_tokens:
                text += rows[(p * per_prompt + c + k * 97) % len(rows)]["answer"] + "\n\n"
                k += 1
            ids = builder.encode(text)[:explanation_tokens]
            ids += builder.encode(builder.fmt.end_explanation) + [tokenizer.eos_token_id]
            items.append({"question": row["question"], "solution": solution, "completion_ids": ids})
    (workdir / "workload.json").write_text(json.dumps(items))


# The naive baseline ----------------------------------------------------------------------------

def naive_reward(
    teacher, student, builder: SequenceBuilder, items: list[dict], config: RewardConfig
) -> list[RewardTerms]:
    """One completion at a time; full [T × V] logits and log-softmax for both models."""
    results = []
    for item in items:
        split = builder.split_completion(item["completion_ids"])
        s_seq = builder.student_sequence(item["question"], split.explanation_ids, item["solution"])
        t_seq = builder.teacher_sequence(builder.teacher_prompt_ids(item["question"], item["solution"]),
                                         split.explanation_ids)
        s_logps = _full_token_log_probs(student, s_seq.ids, config.student_temperature)
        t_logps = _full_token_log_probs(teacher, t_seq.ids, config.teacher_temperature)
        ell = s_logps[s_seq.solution.start - 1:s_seq.solution.end - 1]
        delta = (t_logps[t_seq.explanation.start - 1:t_seq.explanation.end - 1]
                 - s_logps[s_seq.explanation.start - 1:s_seq.explanation.end - 1])
        results.append(combine_terms(ell, delta, found_end_tag=split.found_end_tag, truncated=False, config=config))
    return results


def _full_token_log_probs(model, ids: list[int], temperature: float) -> torch.Tensor:
    input_ids = torch.tensor([ids], device=model.device)
    logits = model(input_ids).logits[0, :-1].float()  # [T-1, V]
    logps = torch.log_softmax(logits / temperature, dim=-1)
    return logps.gather(-1, input_ids[0, 1:, None]).squeeze(-1).cpu()


# Measuring one method in its own process -------------------------------------------------------

def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak(device: torch.device) -> int:
    """Start a peak measurement; returns the baseline in bytes."""
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        return torch.cuda.memory_allocated()
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current resident set
    return _rss_kib("VmRSS") * 1024


def _peak(device: torch.device) -> int:
    if device.type == "cuda":
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated()
    return _rss_kib("VmHWM") * 1024


def worker(method: str, workdir: Path, device: str) -> dict:
    device = torch.device(device)
    tokenizer = load_tokenizer(str(workdir / "teacher"))
    teacher = load_causal_lm(str(workdir / "teacher"), "float32", device, frozen=True)
    student = load_causal_lm(str(workdir / "student"), "float32", device, frozen=True)
    items = json.loads((workdir / "workload.json").read_text())
    config = RewardConfig()
    reward = RLTReward(teacher, student, tokenizer, config)

    def run(batch):
        with torch.no_grad():
            if method == "naive":
                return naive_reward(teacher, student, reward.builder, batch, config)
            return reward.score_completions([i["question"] for i in batch], [i["solution"] for i in batch],
                                            [i["completion_ids"] for i in batch])

    run(items[:2])  # warm-up: kernels, allocator, prompt caches of the builder
    baseline = _reset_peak(device)
    start = time.perf_counter()
    terms = run(items)
    seconds = time.perf_counter() - start
    return {"method": method, "seconds": seconds, "peak_bytes": _peak(device) - baseline,
            "rewards": [t.reward for t in terms]}


def _run_worker(method: str, workdir: Path, device: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--worker", method, "--workdir", str(workdir), "--device", device],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--completions", type=int, default=64)
    parser.add_argument("--prompts", type=int, default=8, help="Distinct prompts (completions share them).")
    parser.add_argument("--explanation_tokens", type=int, default=300)
    parser.add_argument("--shape", choices=sorted(SHAPES), default="qwen2-20m", help="Model shape (see SHAPES).")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--worker", choices=["naive", "rlt"], help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.workdir, args.device)))
        return

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        build_workload(workdir, args.shape, args.prompts, args.completions, args.explanation_tokens)
        n_params = sum(p.numel() for p in load_causal_lm(str(workdir / "teacher"), "float32", "cpu").parameters())
        naive = _run_worker("naive", workdir, args.device)
        ours = _run_worker("rlt", workdir, args.device)

    print(f"device {args.device}, torch threads {torch.get_num_threads()}, shape {args.shape} "
          f"({n_params / 1e6:.1f}M params), "
          f"{args.completions} completions over {args.prompts} prompts, {args.explanation_tokens}-token explanations")
    print(f"{'method':<8}{'completions/s':>15}{'seconds':>10}{'peak MiB':>10}")
    for result in (naive, ours):
        print(f"{result['method']:<8}{args.completions / result['seconds']:>15.2f}{result['seconds']:>10.2f}"
              f"{result['peak_bytes'] / 2**20:>10.1f}")
    speedup = naive["seconds"] / ours["seconds"]
    memory = ours["peak_bytes"] / naive["peak_bytes"]
    diff = max(abs(a - b) for a, b in zip(naive["rewards"], ours["rewards"], strict=True))
    print(f"reward benchmark: speedup {speedup:.1f}x, peak memory {memory:.2f}x, max abs diff {diff:.1e}")


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
