"""`rlt distill` on tiny local models: both formats, flags and summary, best-of-k, kill and resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rlt.cli import main as rlt
from rlt.commands.distill import DistillOutputs
from rlt.data import load_examples, read_jsonl
from rlt.formats import FormatConfig
from rlt.generation import Generation

FMT = FormatConfig(teacher_system_prompt="Explain.", student_system_prompt="Think.")
ROOT = Path(__file__).resolve().parents[2]


def _rows(n: int) -> list[dict]:
    return [{"question": f"What is {10 + i}+{i % 7}?", "solution": str(10 + i + i % 7)} for i in range(n)]


@pytest.fixture(scope="module")
def workspace(char_models):
    return char_models


def _dataset(workspace: Path, n: int) -> Path:
    path = workspace / f"rows_{n}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in _rows(n)))
    return path


def _args(workspace: Path, dataset: Path, out: Path, *extra: str) -> list[str]:
    return ["distill", "--teacher", str(workspace / "teacher"), "--dataset", str(dataset), "--output_dir", str(out),
            "--max_new_tokens", "16", "--teacher_system_prompt", FMT.teacher_system_prompt,
            "--student_system_prompt", FMT.student_system_prompt, *extra]


def _triples(examples) -> list[tuple]:
    return [(e.question, e.solution, e.reasoning_trace) for e in examples]


def test_every_explanation_becomes_a_row_in_both_formats(workspace, tmp_path):
    out = DistillOutputs(tmp_path / "out")
    assert rlt(_args(workspace, _dataset(workspace, 4), out.folder, "--num_samples", "2")) == 0
    candidates, messages, stratos = out.read_candidates(), out.read_messages(), read_jsonl(out.distilled)
    assert [(c["question_index"], c["sample_index"]) for c in candidates] == [(q, s) for q in range(4) for s in (0, 1)]
    assert len(stratos) == len(messages) == 8
    for candidate, row, record in zip(candidates, stratos, messages):
        example = _rows(4)[candidate["question_index"]]
        answer = FMT.student_answer(candidate["explanation"], example["solution"])
        assert row == {"system": "Think.", "conversations": [{"from": "user", "value": example["question"]},
                                                             {"from": "assistant", "value": answer}]}
        assert record["messages"] == FMT.student_messages(example["question"], candidate["explanation"],
                                                          example["solution"])
        assert record["sample_index"] == candidate["sample_index"] and "reward" not in record
    summary = out.read_summary()
    assert summary["questions"] == 4 and summary["num_samples"] == 2 and summary["candidates"] == summary["rows"] == 8
    assert summary["truncated"] == sum(c["truncated"] for c in candidates)
    assert summary["missing_end_tag"] == sum(not c["found_end_tag"] for c in candidates)
    assert summary["mean_explanation_tokens"] == pytest.approx(sum(c["explanation_tokens"] for c in candidates) / 8)
    assert summary["mean_reward"] is None and summary["wall_seconds"] > 0
    assert json.loads((out.folder / "rlt_run.json").read_text())["status"] == "finished"

    # Both files read back as the examples they came from (the Stratos one unless a sampled
    # explanation holds the closing thought tag itself, which ends the thought early by design).
    expected = [(_rows(4)[c["question_index"]]["question"], _rows(4)[c["question_index"]]["solution"],
                 c["explanation"]) for c in candidates]
    assert _triples(load_examples(out.messages).items) == expected
    from_stratos = _triples(load_examples(out.distilled).items)
    clean = [i for i, (_, _, explanation) in enumerate(expected) if FMT.end_thought not in explanation]
    assert clean and [from_stratos[i] for i in clean] == [expected[i] for i in clean]


# A scripted teacher: each sample index always writes the same completion (text, finished).
SCRIPT = [
    ("12+30=42.<|end_of_explanation|>", True),  # closed: whole, tagged
    ("  Add the tens,\n\nthen the units. ", True),  # ended by EOS without the tag (kept verbatim)
    ("Carry the one, then", False),  # ran into max_new_tokens: truncated
    ("4+2=6.<|end_of_explanation|>more", False),  # closed, then ran on: the explanation is whole
]


def test_flags_and_summary_count_truncated_and_untagged_explanations(workspace, tmp_path, monkeypatch,
                                                                     char_tokenizer):
    seen_stops = []

    def scripted_generate(model, tokenizer, prompts, config, stop_token_ids=(), on_batch=None):
        seen_stops.append(list(stop_token_ids))
        batches = [[Generation(p, s, text, tokenizer.encode(text, add_special_tokens=False), finished)
                    for s, (text, finished) in enumerate(SCRIPT)] for p in range(len(prompts))]
        for batch in batches:
            on_batch(batch)
        return [g for batch in batches for g in batch]

    monkeypatch.setattr("rlt.commands.distill.generate", scripted_generate)
    out = DistillOutputs(tmp_path / "out")
    rlt(_args(workspace, _dataset(workspace, 2), out.folder, "--num_samples", "4"))
    candidates = out.read_candidates()
    explanations = ["12+30=42.", "  Add the tens,\n\nthen the units. ", "Carry the one, then", "4+2=6."]
    assert [c["explanation"] for c in candidates] == explanations * 2
    assert [c["found_end_tag"] for c in candidates] == [True, False, False, True] * 2
    assert [c["truncated"] for c in candidates] == [False, False, True, False] * 2
    assert [c["explanation_tokens"] for c in candidates] == [len(e) for e in explanations] * 2  # a char each
    summary = out.read_summary()
    assert (summary["rows"], summary["truncated"], summary["missing_end_tag"]) == (8, 2, 4)
    assert summary["mean_explanation_tokens"] == sum(map(len, explanations)) / 4
    end_tag = char_tokenizer.convert_tokens_to_ids(FMT.end_explanation)
    assert seen_stops == [sorted([char_tokenizer.eos_token_id, end_tag])]  # EOS and the one-token end tag
    for path in (out.distilled, out.messages):
        assert [e.reasoning_trace for e in load_examples(path).items] == explanations * 2


def test_best_of_k_keeps_each_questions_highest_reward(workspace, tmp_path):
    from rlt.modeling import load_causal_lm, load_tokenizer
    from rlt.reward import RewardConfig, RLTReward

    out, rows = DistillOutputs(tmp_path / "out"), _rows(3)
    rlt(_args(workspace, _dataset(workspace, 3), out.folder, "--num_samples", "3", "--temperature", "0.9",
              "--best_of_k_student", str(workspace / "student")))
    candidates = out.read_candidates()
    teacher, student = (load_causal_lm(str(workspace / name), frozen=True) for name in ("teacher", "student"))
    reward = RLTReward(teacher, student, load_tokenizer(str(workspace / "teacher")),
                       RewardConfig(teacher_temperature=0.9), FMT)
    # The sampled ids are scored, as teacher-rl scores them (not a re-tokenisation of the text).
    terms = reward.score_completions([rows[c["question_index"]]["question"] for c in candidates],
                                     [rows[c["question_index"]]["solution"] for c in candidates],
                                     [c["completion_ids"] for c in candidates])
    expected = [t.reward for t in terms]
    assert [c["reward"] for c in candidates] == pytest.approx(expected, abs=1e-4)
    assert [c["reward_terms"]["explanation_tokens"] for c in candidates] == [t.explanation_tokens for t in terms]

    kept = out.read_messages()
    assert [r["question_index"] for r in kept] == [0, 1, 2] and len(read_jsonl(out.distilled)) == 3
    for row in kept:
        rewards = expected[3 * row["question_index"]:3 * row["question_index"] + 3]
        assert row["sample_index"] == rewards.index(max(rewards))
        assert row["reward"] == pytest.approx(max(rewards), abs=1e-4)
        assert row["reasoning_trace"] == candidates[3 * row["question_index"] + row["sample_index"]]["explanation"]
    summary = out.read_summary()
    assert summary["candidates"] == 9 and summary["rows"] == 3
    assert summary["mean_reward"] == pytest.approx(sum(r["reward"] for r in kept) / 3)
    info = json.loads((out.folder / "rlt_run.json").read_text())
    assert info["config"]["reward"]["teacher_temperature"] == info["config"]["sampling"]["temperature"] == 0.9


def _entries(journal: Path) -> tuple[str, list[dict]]:
    """The header line and the whole entries of a journal (a line cut by the kill is left out)."""
    header, *lines = journal.read_text().split("\n")
    entries = []
    for line in lines:
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return header, entries


def _complete(entries: list[dict], k: int) -> set[int]:
    samples: dict[int, set[int]] = {}
    for entry in entries:
        samples.setdefault(entry["question_index"], set()).add(entry["sample_index"])
    return {q for q, s in samples.items() if len(s) == k}


def _kill_midway(args: list[str], journal: Path, n: int, k: int) -> bool:
    """Run ``rlt distill`` in a subprocess and SIGKILL it once some, not all, questions are saved."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    process = subprocess.Popen([sys.executable, "-m", "rlt.cli", *args], env=env, cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while process.poll() is None and time.time() < deadline:
            if journal.exists() and _complete(_entries(journal)[1], k):
                break
            time.sleep(0.02)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    return journal.exists() and 0 < len(_complete(_entries(journal)[1], k)) < n


def test_a_killed_run_resumes_without_losing_or_repeating_rows(workspace, tmp_path):
    k = 2
    for n in (40, 400):  # more questions if the run finished before it could be killed
        out = DistillOutputs(tmp_path / f"out_{n}")
        args = _args(workspace, _dataset(workspace, n), out.folder, "--num_samples", str(k), "--batch_size", "1")
        journal = out.explanations_journal
        if _kill_midway(args, journal, n, k):
            break
    else:
        pytest.fail("could not kill the run between its first and last question")

    # Mark what the killed run saved, so that reuse is visible; add an incomplete question (must be
    # redone whole) and a line cut by the kill (must be dropped).
    header, entries = _entries(journal)
    complete = _complete(entries, k)
    saved = [{**e, "explanation": f"reused {e['question_index']}:{e['sample_index']}"} for e in entries
             if e["question_index"] in complete]
    orphan = min(set(range(n)) - complete)
    saved.append({**saved[0], "question_index": orphan, "sample_index": 0, "explanation": "orphan"})
    journal.write_text("\n".join([header, *map(json.dumps, saved)]) + '\n{"question_index": 3, "sampl')

    assert rlt(args) == 0
    rows = out.read_messages()
    keys = [(r["question_index"], r["sample_index"]) for r in rows]
    assert sorted(keys) == [(q, s) for q in range(n) for s in range(k)]  # each question k times, no more
    reused = {key for key, r in zip(keys, rows) if r["reasoning_trace"].startswith("reused")}
    assert reused == {(q, s) for q in complete for s in range(k)}
    for row in rows:
        if (row["question_index"], row["sample_index"]) in reused:
            assert row["reasoning_trace"] == f"reused {row['question_index']}:{row['sample_index']}"
    assert "orphan" not in {r["reasoning_trace"] for r in rows}
    assert len(read_jsonl(out.distilled)) == n * k


def test_a_finished_folder_is_never_overwritten_or_recomputed(workspace, tmp_path, rlt_error, monkeypatch, caplog):
    dataset, out = _dataset(workspace, 2), DistillOutputs(tmp_path / "out")
    assert rlt(_args(workspace, dataset, out.folder)) == 0
    written = {path: path.read_bytes() for path in out.folder.iterdir() if path.is_file()}
    message = rlt_error(_args(workspace, dataset, out.folder, "--temperature", "0.9"))
    assert message == (f"{out.folder} holds a `rlt distill` run made with other settings (temperature: 0.7 → 0.9): "
                       "choose another --output_dir, or --overwrite true to delete its contents and start again")
    assert {path: path.read_bytes() for path in written} == written  # rlt_run.json and outputs untouched

    def refuse(*args, **kwargs):
        raise AssertionError("generated again")

    monkeypatch.setattr("rlt.commands.distill.generate", refuse)
    with caplog.at_level("INFO"):
        assert rlt(_args(workspace, dataset, out.folder)) == 0
    assert "holds this distillation, finished: nothing to do" in caplog.text
    assert {path: path.read_bytes() for path in written} == written
    monkeypatch.undo()
    assert rlt(_args(workspace, dataset, out.folder, "--temperature", "0.9", "--overwrite", "true")) == 0
    assert json.loads((out.folder / "rlt_run.json").read_text())["config"]["sampling"]["temperature"] == 0.9


def test_best_of_k_scores_a_finished_distillation_without_explaining_again(workspace, tmp_path, monkeypatch):
    dataset, out = _dataset(workspace, 2), DistillOutputs(tmp_path / "out")
    rlt(_args(workspace, dataset, out.folder, "--num_samples", "2"))
    explanations = [c["explanation"] for c in out.read_candidates()]

    def refuse(*args, **kwargs):
        raise AssertionError("generated again")

    monkeypatch.setattr("rlt.commands.distill.generate", refuse)
    assert rlt(_args(workspace, dataset, out.folder, "--num_samples", "2",
                     "--best_of_k_student", str(workspace / "student"))) == 0
    assert [c["explanation"] for c in out.read_candidates()] == explanations
    assert len(out.read_messages()) == 2 and all("reward" in c for c in out.read_candidates())


def test_a_second_process_on_the_folder_is_refused(workspace, tmp_path, rlt_error):
    out = DistillOutputs(tmp_path / "out")
    args = _args(workspace, _dataset(workspace, 400), out.folder, "--batch_size", "1")
    first = subprocess.Popen([sys.executable, "-m", "rlt.cli", *args], env={**os.environ, "HF_HUB_OFFLINE": "1"},
                             cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while not out.explanations_journal.exists():
            assert first.poll() is None and time.time() < deadline
            time.sleep(0.05)
        assert f"is in use by another run (`rlt distill`, pid {first.pid} on " in rlt_error(args)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert rlt(_args(workspace, _dataset(workspace, 400), out.folder, "--limit", "3")) == 0  # its owner is gone
    assert len(out.read_messages()) == 3
