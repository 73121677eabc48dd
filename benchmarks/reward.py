"""Benchmark: rlt's RLT reward against the naive computation, on Qwen2.5's real tokenizer and real text.

Naive = what the official code does: one completion at a time, the full-vocabulary logits of the
whole teacher and student sequences, a log-softmax over them, then a gather. rlt's reward batches
completions, runs each prompt's shared prefix once, and projects only the span positions through
the LM head in fp32 chunks.

Two workloads, each explanation a real Sky-T1 trace (its first ``--max_explanation_tokens`` tokens)
for a real MATH-500 question and solution, in the paper's prompts:

* **shared prompts**: ``--prompts`` questions with ``--per_prompt`` completions each (GRPO's batches);
* **distinct prompts**: ``--distinct`` questions with one completion each (what ``rlt score`` and
  distillation scoring see): no prefix to share.

Models: a Qwen2 body of ~21M parameters with Qwen2.5's 151,936-row vocabulary (tied), loaded from
disk with the Qwen2.5 tokenizer rebuilt offline (``tests/fixtures/qwen2_5.py``; needs the test
extras). Each method runs in a fresh process, so neither inherits the other's allocator state. Peak
memory is the rise of the process's resident set (CPU; reset with /proc/self/clear_refs) or of
allocated CUDA memory during the scoring call, above what the loaded models already hold.

    python benchmarks/reward.py [--prompts 2 --per_prompt 8 --distinct 16 --max_explanation_tokens 512]
                                [--device cpu] [--smoke]   # --smoke: a 2-layer body, 2+2 completions, seconds
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from fixtures.qwen2_5 import save_qwen2_5_model, save_qwen2_5_tokenizer  # noqa: E402

from rlt.data import load_examples  # noqa: E402
from rlt.formats import SequenceBuilder  # noqa: E402
from rlt.modeling import load_causal_lm, load_tokenizer  # noqa: E402
from rlt.reward import RewardConfig, RewardTerms, RLTReward, combine_terms  # noqa: E402
from rlt.toy import ModelSize  # noqa: E402

SHARED_DATA = Path(os.environ.get("RLT_SHARED_DATA", ROOT.parent / "shared" / "data"))  # as tests/conftest.py
SKY_T1 = SHARED_DATA / "reasoning_traces_sky_t1"
# Qwen2's architecture at ~21M parameters (the vocabulary is Qwen2.5's, so the LM head costs what it does there).
SHAPE = ModelSize(hidden_size=128, num_layers=6, num_heads=2, num_kv_heads=1, intermediate_size=704,
                  max_position_embeddings=4096)
# --smoke: the same vocabulary and code, a body that costs nothing (what it measures then means nothing).
SMOKE_SHAPE = ModelSize(hidden_size=64, num_layers=2, num_heads=2, num_kv_heads=1, intermediate_size=128,
                        max_position_embeddings=4096)
WORKLOADS = ("shared", "distinct")


# Workload --------------------------------------------------------------------------------------

def _examples():
    files = sorted(SKY_T1.rglob("*.jsonl"))
    if not files:
        raise SystemExit(f"this benchmark reads real traces from {SKY_T1}")
    return load_examples(files[0], on_error="skip", require_trace=True).items


def build_workload(workdir: Path, prompts: int, per_prompt: int, distinct: int, max_explanation_tokens: int,
                   shape: ModelSize = SHAPE) -> None:
    """Tokenizer, teacher, student and both workloads' completions, written to ``workdir``."""
    save_qwen2_5_tokenizer(workdir / "tokenizer")
    for name, seed in (("teacher", 1), ("student", 2)):
        save_qwen2_5_model(workdir / name, workdir / "tokenizer", seed=seed, size=shape)
    builder = SequenceBuilder(load_tokenizer(str(workdir / "teacher")))
    tail = builder.encode(builder.fmt.end_explanation) + [builder.tokenizer.eos_token_id]
    examples = _examples()
    traces = iter(examples[prompts + distinct:] * 4)  # the other rows' traces, for the shared prompts

    def item(example, trace: str) -> dict:
        return {"question": example.question, "solution": example.solution,
                "completion_ids": builder.encode(trace)[:max_explanation_tokens] + tail}

    workloads = {
        "shared": [item(e, next(traces).reasoning_trace) for e in examples[:prompts] for _ in range(per_prompt)],
        "distinct": [item(e, e.reasoning_trace) for e in examples[prompts:prompts + distinct]],
    }
    (workdir / "workloads.json").write_text(json.dumps(workloads))


def positions(workdir: Path, workload: str) -> tuple[int, int]:
    """LM-head positions of the naive computation (every position of both sequences) and of rlt's (the spans)."""
    builder = SequenceBuilder(load_tokenizer(str(workdir / "teacher")))
    naive = spans = 0
    for item in json.loads((workdir / "workloads.json").read_text())[workload]:
        explanation = builder.split_completion(item["completion_ids"]).explanation_ids
        student = builder.student_sequence(item["question"], explanation, item["solution"])
        teacher = builder.teacher_sequence(builder.teacher_prompt_ids(item["question"], item["solution"]), explanation)
        naive += len(student.ids) + len(teacher.ids) - 2
        spans += 2 * len(explanation) + len(student.solution)
    return naive, spans


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
        t_logps = _full_token_log_probs(teacher, t_seq.ids, config.at_teacher_temperature().teacher_temperature)
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


def worker(method: str, workload: str, workdir: Path, device: str) -> dict:
    device = torch.device(device)
    tokenizer = load_tokenizer(str(workdir / "teacher"))
    teacher = load_causal_lm(str(workdir / "teacher"), "float32", device, frozen=True)
    student = load_causal_lm(str(workdir / "student"), "float32", device, frozen=True)
    items = json.loads((workdir / "workloads.json").read_text())[workload]
    config = RewardConfig()
    reward = RLTReward(teacher, student, tokenizer, config)

    def run(batch):
        with torch.no_grad():
            if method == "naive":
                return naive_reward(teacher, student, reward.builder, batch, config)
            return reward.score_completions([i["question"] for i in batch], [i["solution"] for i in batch],
                                            [i["completion_ids"] for i in batch])

    run(items[:1])  # warm-up: kernels, allocator, prompt caches of the builder
    baseline = _reset_peak(device)
    start = time.perf_counter()
    terms = run(items)
    seconds = time.perf_counter() - start
    return {"method": method, "workload": workload, "seconds": seconds, "peak_bytes": _peak(device) - baseline,
            "rewards": [t.reward for t in terms]}


def _run_worker(method: str, workload: str, workdir: Path, device: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--worker", method, "--workload", workload,
                          "--workdir", str(workdir), "--device", device], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prompts", type=int, default=2, help="Shared-prompts workload: distinct prompts.")
    parser.add_argument("--per_prompt", type=int, default=8, help="Shared-prompts workload: completions per prompt.")
    parser.add_argument("--distinct", type=int, default=16, help="Distinct-prompts workload: completions.")
    parser.add_argument("--max_explanation_tokens", type=int, default=512)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--worker", choices=["naive", "rlt"], help=argparse.SUPPRESS)
    parser.add_argument("--workload", choices=WORKLOADS, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--smoke", action="store_true",
                        help="Tiny body and workloads (seconds): that the script runs; its figures mean nothing.")
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.workload, args.workdir, args.device)))
        return
    if args.smoke:
        args.prompts, args.per_prompt, args.distinct, args.max_explanation_tokens = 1, 2, 2, 64

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        build_workload(workdir, args.prompts, args.per_prompt, args.distinct, args.max_explanation_tokens,
                       SMOKE_SHAPE if args.smoke else SHAPE)
        n_params = sum(p.numel() for p in load_causal_lm(str(workdir / "teacher"), "float32", "cpu").parameters())
        runs = [(m, w) for w in WORKLOADS for m in ("naive", "rlt")]
        # --smoke: two worker processes at a time (mostly imports; its figures mean nothing anyway)
        with ThreadPoolExecutor(2 if args.smoke else 1) as pool:
            done = dict(zip(runs, pool.map(lambda run: _run_worker(*run, workdir, args.device), runs)))
        results = {w: [done[m, w] for m in ("naive", "rlt")] for w in WORKLOADS}
        head = {w: positions(workdir, w) for w in WORKLOADS}

    print(f"device {args.device}, torch threads {torch.get_num_threads()}, Qwen2.5 tokenizer and vocabulary, "
          f"{n_params / 1e6:.1f}M params; explanations: Sky-T1 traces, at most {args.max_explanation_tokens} tokens")
    print(f"{'workload':<10}{'method':<8}{'completions':>12}{'seconds':>10}{'peak MiB':>10}{'head positions':>16}")
    speedups, memory, diffs = {}, [], []
    for workload, (naive, ours) in results.items():
        for result, count in zip((naive, ours), head[workload]):
            print(f"{workload:<10}{result['method']:<8}{len(result['rewards']):>12}{result['seconds']:>10.2f}"
                  f"{result['peak_bytes'] / 2**20:>10.1f}{count:>16,}")
        speedups[workload] = naive["seconds"] / ours["seconds"]
        memory.append(ours["peak_bytes"] / max(naive["peak_bytes"], 1))
        diffs += [abs(a - b) for a, b in zip(naive["rewards"], ours["rewards"], strict=True)]
        print(f"{'':<10}LM-head positions, naive / rlt: {head[workload][0] / head[workload][1]:.2f}x")
    print(f"reward benchmark: speedup {speedups['shared']:.1f}x (shared prompts), {speedups['distinct']:.1f}x "
          f"(distinct prompts), peak memory {max(memory):.2f}x, max abs diff {max(diffs):.1e}")


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
