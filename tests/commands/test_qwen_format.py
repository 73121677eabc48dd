"""Every command on Qwen2.5's real tokenizer and chat template, with tiny random Qwen2.5-shaped models
and real rows (Sky-T1 traces, MATH-500): what only the real format can break.

In Qwen's vocabulary the tags are plain text that merges with its neighbours (a trace starting with
``\\n\\n`` turns the prompt's last ``>`` into ``>\\n\\n`` when prompt and trace are tokenised as one
text), its ChatML template has a default system prompt and no ``{% generation %}`` markers, its
checkpoints bring sampling defaults (top-k 20, a repetition penalty), and a character may span
several tokens. The tests check that the token ids a teacher is trained on, samples from and is
rewarded on are the same ids in the same context, and the same for a student and its evaluation.
"""

from __future__ import annotations

import json
import math

import pytest
from conftest import SHARED_DATA
from fixtures.qwen2_5 import IM_END_ID

from rlt.cli import main as rlt
from rlt.data import load_examples
from rlt.formats import FormatConfig, SequenceBuilder
from rlt.generation import Generation

SKY_T1 = next(iter(sorted((SHARED_DATA / "reasoning_traces_sky_t1").rglob("*.jsonl"))), None)
MATH500 = SHARED_DATA / "math500" / "test.jsonl"
FMT = FormatConfig()  # the paper's prompts: what users run

pytestmark = pytest.mark.skipif(SKY_T1 is None or not MATH500.exists(), reason="needs ../shared/data")


@pytest.fixture(scope="module")
def builder(qwen_tokenizer):
    return SequenceBuilder(qwen_tokenizer, FMT)


def _read(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _sky_t1_examples(n: int):
    return load_examples(SKY_T1, limit=n, on_error="skip", require_trace=True).items


class _Recorder:
    """Wraps a function or method, keeping each call's arguments and result."""

    def __init__(self, monkeypatch, owner, name):
        self.calls, original = [], getattr(owner, name)

        def wrapper(*args, **kwargs):
            result = original(*args, **kwargs)
            self.calls.append((args, kwargs, result))
            return result

        monkeypatch.setattr(owner, name, wrapper)


def _trained_rows(monkeypatch, run) -> list[dict]:
    """The SFT trainer's prepared dataset (input_ids and labels) of the command ``run`` runs."""
    import rlt.commands.sft

    trainers = []

    class Recording(rlt.commands.sft.SFTTrainer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            trainers.append(self)

    monkeypatch.setattr(rlt.commands.sft, "SFTTrainer", Recording)
    assert run() == 0
    return list(trainers[0].train_dataset)


def _prompt_and_target(row: dict) -> tuple[list[int], list[int]]:
    """The ids before the loss and the ids in it, checking that the loss covers one run of tokens."""
    trained = [i for i, label in enumerate(row["labels"]) if label != -100]
    start, end = trained[0], trained[-1] + 1
    assert trained == list(range(start, end)) and row["labels"][start:end] == row["input_ids"][start:end]
    return row["input_ids"][:start], row["input_ids"][start:end]


def _short_traces(path, n: int):
    """Sky-T1 rows with their traces' first 600 characters (a CPU-sized sequence); returns the examples."""
    rows = [{"question": e.question, "solution": e.solution, "reasoning_trace": e.reasoning_trace[:600]}
            for e in _sky_t1_examples(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return load_examples(path).items


def test_teacher_warm_up_trains_on_the_ids_the_teacher_is_prompted_with(qwen_models, builder, tmp_path,
                                                                        monkeypatch):
    examples = _short_traces(tmp_path / "traces.jsonl", 3)
    assert all(e.reasoning_trace.startswith("\n\n") for e in examples)  # as Bespoke-Stratos traces do
    rows = _trained_rows(monkeypatch, lambda: rlt([
        "teacher-sft", "--model", str(qwen_models / "teacher"), "--dataset", str(tmp_path / "traces.jsonl"),
        "--output_dir", str(tmp_path / "sft"), "--max_steps", "1", "--per_device_train_batch_size", "1",
        "--report_to", "none"]))
    assert len(rows) == 3
    tokenizer = builder.tokenizer
    for example, row in zip(examples, rows, strict=True):
        prompt, target = _prompt_and_target(row)
        # The prompt ids teacher-rl's trainer and distill sample from (TRL tokenises the prompt text as is).
        expected = list(builder.teacher_prompt_ids(example.question, example.solution))
        assert prompt == expected
        assert prompt == tokenizer(text=builder.teacher_prompt(example.question, example.solution))["input_ids"]
        assert tokenizer.convert_ids_to_tokens(prompt[-2:]) == ["|", ">"]  # not "|" + ">\n\n"
        assert target[: len(builder.encode(example.reasoning_trace))] == builder.encode(example.reasoning_trace)
        assert tokenizer.decode(target).endswith(FMT.end_explanation + "<|im_end|>") and target[-1] == IM_END_ID


def test_teacher_rl_samples_and_is_rewarded_on_the_ids_it_was_warmed_up_on(qwen_models, builder, tmp_path,
                                                                         monkeypatch):
    from rlt.grpo import RLTGRPOTrainer
    from rlt.records import teacher_records
    from rlt.reward import RLTReward

    generation = _Recorder(monkeypatch, RLTGRPOTrainer, "_generate_single_turn")
    scoring = _Recorder(monkeypatch, RLTReward, "score_completions")
    rows = _Recorder(monkeypatch, RLTReward, "_row")
    out = tmp_path / "rl"
    assert rlt(["teacher-rl", "--model", str(qwen_models / "teacher"), "--student", str(qwen_models / "student"),
                "--dataset", str(SKY_T1), "--limit", "2", "--output_dir", str(out), "--max_steps", "2",
                "--num_generations", "2", "--per_device_train_batch_size", "2", "--max_completion_length", "24",
                "--logging_steps", "1", "--save_steps", "2", "--report_to", "none"]) == 0

    examples = _sky_t1_examples(2)
    warm_up_prompts = [_prompt_and_target({"input_ids": r["input_ids"],
                                           "labels": [-100 if m == 0 else t for t, m in
                                                      zip(r["input_ids"], r["completion_mask"])]})[0]
                       for r in teacher_records(examples, builder.tokenizer, FMT)]
    sampled_from = [list(ids) for (_, prompt_ids, *_), _, _ in generation.calls for ids in prompt_ids]
    assert sampled_from and all(prompt in warm_up_prompts for prompt in sampled_from)
    scored = [(q, s, list(ids)) for (_, questions, solutions, completion_ids, *_), _, _ in scoring.calls
              for q, s, ids in zip(questions, solutions, completion_ids)]
    assert len(scored) == len(rows.calls) == 4
    for (question, solution, completion), (_, _, row) in zip(scored, rows.calls):
        prompt = list(builder.teacher_prompt_ids(question, solution))
        explanation = builder.split_completion(completion).explanation_ids
        assert prompt in sampled_from
        assert row.teacher.ids == prompt + explanation and completion[: len(explanation)] == explanation
        assert row.student.ids[row.student.explanation.start:row.student.explanation.end] == explanation
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert all(math.isfinite(m["rlt/reward"]) for m in metrics if "rlt/reward" in m)


@pytest.fixture(scope="module")
def distilled(qwen_models, tmp_path_factory):
    """`rlt distill` with best-of-k on MATH-500 rows: 2 questions × 4 sampled explanations."""
    out = tmp_path_factory.mktemp("distill")
    assert rlt(["distill", "--teacher", str(qwen_models / "teacher"), "--dataset", str(MATH500), "--limit", "2",
                "--output_dir", str(out), "--num_samples", "4", "--max_new_tokens", "32",
                "--best_of_k_student", str(qwen_models / "student")]) == 0
    return out


def test_best_of_k_scores_the_sampled_ids(distilled, builder):
    candidates = _read(distilled / "candidates.jsonl")
    assert len(candidates) == 8
    for candidate in candidates:
        split = builder.split_completion(candidate["completion_ids"])
        assert candidate["reward_terms"]["explanation_tokens"] == len(split.explanation_ids)
        assert candidate["explanation"] == split.explanation_text and math.isfinite(candidate["reward"])
    # Re-encoding the decoded text (how best-of-k scored before) gives other tokens for most of them.
    recounted = [len(builder.encode(c["explanation"])) != c["reward_terms"]["explanation_tokens"] for c in candidates]
    assert sum(recounted) > len(candidates) / 2
    kept = _read(distilled / "distilled.jsonl")
    assert len(kept) == 2 and all(row["conversations"][1]["value"].startswith(FMT.begin_thought) for row in kept)


def test_distill_writes_whole_characters_and_scores_what_precedes_the_tag(qwen_models, builder, tmp_path,
                                                                           monkeypatch):
    """A token that straddles the end tag (``.<``) and a completion cut inside an emoji."""
    tokenizer = builder.tokenizer
    tagged = tokenizer.encode("x = 5.<|end_of_explanation|><|im_end|>")
    cut = tokenizer.encode("Voilà 🤗")[:-1]  # the emoji's last byte is not generated
    assert tokenizer.decode(cut).endswith("\ufffd")

    def scripted(model, tokenizer_, prompts, config, stop_token_ids=(), on_batch=None):
        batch = [Generation(p, s, tokenizer.decode(ids), ids, finished)
                 for p in range(len(prompts)) for s, (ids, finished) in enumerate([(tagged, True), (cut, False)])]
        on_batch(batch)
        return batch

    monkeypatch.setattr("rlt.commands.distill.generate", scripted)
    out = tmp_path / "out"
    assert rlt(["distill", "--teacher", str(qwen_models / "teacher"), "--dataset", str(MATH500), "--limit", "1",
                "--output_dir", str(out), "--num_samples", "2",
                "--best_of_k_student", str(qwen_models / "student")]) == 0
    candidates = _read(out / "candidates.jsonl")
    assert [c["explanation"] for c in candidates] == ["x = 5.", "Voilà "]
    assert [c["reward_terms"]["explanation_tokens"] for c in candidates] == [4, len(cut)]  # ".<" is left out
    assert "\ufffd" not in (out / "distilled.jsonl").read_text(encoding="utf-8")


def test_student_trains_on_the_ids_it_is_evaluated_with(qwen_models, distilled, builder, tmp_path, monkeypatch):
    rows = _trained_rows(monkeypatch, lambda: rlt([
        "student-sft", "--model", str(qwen_models / "student"), "--dataset", str(distilled / "distilled.jsonl"),
        "--output_dir", str(tmp_path / "student"), "--max_steps", "1", "--per_device_train_batch_size", "2",
        "--report_to", "none"]))
    examples = load_examples(distilled / "distilled.jsonl").items
    trained_prompts = []
    for example, row in zip(examples, rows, strict=True):
        prompt, target = _prompt_and_target(row)
        assert prompt == list(builder.student_prompt_ids(example.question))
        # The loss is exactly on the assistant turn through <|im_end|>: not the newline after the role
        # header, not the one after the end of turn (TRL's qwen2_5_training template masks both).
        assert builder.tokenizer.decode(target) == FMT.student_answer(example.reasoning_trace, example.solution) \
            + "<|im_end|>"
        trained_prompts.append(prompt)

    prompts = _Recorder(monkeypatch, __import__("rlt.commands.evaluate", fromlist=["generate"]), "generate")
    out = tmp_path / "eval"
    assert rlt(["evaluate", "--model", str(tmp_path / "student"), "--dataset", str(MATH500), "--limit", "2",
                "--output_dir", str(out), "--num_samples", "2", "--max_new_tokens", "16"]) == 0
    (_, _, evaluated, *_), _, _ = prompts.calls[0]
    assert [builder.tokenizer.encode(p, add_special_tokens=False) for p in evaluated] == trained_prompts
    summary = json.loads((out / "summary.json").read_text())
    assert summary["problems"] == 2 and 0 <= summary["pass@1"] <= 1 and summary["match"] == "math"


def test_score_on_real_traces(qwen_models, builder, tmp_path):
    examples = _sky_t1_examples(3)
    rows = [{"question": e.question, "solution": e.solution, "explanation": e.reasoning_trace[:400]} for e in examples]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    assert rlt(["score", "--teacher", str(qwen_models / "teacher"), "--student", str(qwen_models / "student"),
                "--dataset", str(tmp_path / "in.jsonl"), "--output_dir", str(tmp_path / "out")]) == 0
    for row, scored in zip(rows, _read(tmp_path / "out" / "scored.jsonl"), strict=True):
        assert math.isfinite(scored["reward"]) and scored["found_end_tag"] and not scored["truncated"]
        assert scored["explanation_tokens"] == len(builder.encode(row["explanation"]))
        assert scored["solution_tokens"] == len(builder.encode(row["solution"]))
