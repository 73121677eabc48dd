"""`rlt score` end to end on tiny local models: its contract, best-of-k, resume, errors."""

from __future__ import annotations

import json
import math

import pytest

from rlt.cli import main as rlt
from rlt.commands.score import ScoreOutputs
from rlt.data import DataError, read_jsonl
from rlt.reward import RewardTerms
from rlt.run_folder import RUN_INFO

TERMS = set(RewardTerms.__dataclass_fields__)


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory, bpe_tokenizer, teacher, student):
    root = tmp_path_factory.mktemp("models")
    for name, model in (("teacher", teacher), ("student", student)):
        model.save_pretrained(root / name)
        bpe_tokenizer.save_pretrained(root / name)
    return root / "teacher", root / "student"


ROWS = [
    {"id": "a", "question": "What is 12+30?", "solution": "42", "explanation": "12+30=42."},
    {"id": "b", "question": "What is 2+2?", "solution": "4", "explanations": ["2+2=4.", "", "Four, since 2 and 2."]},
    {"id": "c", "question": "What is 12+30?", "solution": "42", "explanation": "forty-two"},
]


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _score(model_dirs, inp, out, *extra):
    teacher, student = model_dirs
    return rlt(["score", "--teacher", str(teacher), "--student", str(student),
                "--dataset", str(inp), "--output_dir", str(out), *extra])


def test_every_row_keeps_its_fields_and_gains_the_terms(model_dirs, tmp_path):
    out = ScoreOutputs(tmp_path / "scored")
    assert _score(model_dirs, _write(tmp_path / "in.jsonl", ROWS), out.folder) == 0
    rows = out.read_scored()
    assert [r["id"] for r in rows] == ["a", "b", "c"]
    for row, original in zip(rows, ROWS):
        assert {k: row[k] for k in original} == original
        assert TERMS <= set(row)
    assert math.isfinite(rows[0]["reward"]) and isinstance(rows[0]["r_ss"], float)
    assert len(rows[1]["reward"]) == 3 and rows[1]["explanation_tokens"][1] == 0
    info = json.loads((out.folder / RUN_INFO).read_text())
    assert info["config"]["reward"]["kl_mean_coef"] == 3.0 and "transformers" in info["versions"]


def test_keep_best_writes_one_row_per_question(model_dirs, tmp_path):
    out = ScoreOutputs(tmp_path / "best")
    _score(model_dirs, _write(tmp_path / "in.jsonl", ROWS), out.folder, "--keep_best", "true")
    rows = out.read_scored()
    assert len(rows) == 2
    by_question = {r["question"]: r for r in rows}
    two_plus_two = by_question["What is 2+2?"]
    assert two_plus_two["candidates"] == 3 and "explanations" not in two_plus_two
    assert two_plus_two["reward"] == max(two_plus_two["candidate_rewards"])
    assert two_plus_two["explanation"] == ROWS[1]["explanations"][two_plus_two["candidate_rewards"].index(
        two_plus_two["reward"])]
    assert by_question["What is 12+30?"]["candidates"] == 2


def test_a_killed_run_resumes_without_rescoring(model_dirs, tmp_path):
    inp, out = _write(tmp_path / "in.jsonl", ROWS[:2]), ScoreOutputs(tmp_path / "out")
    _score(model_dirs, inp, out.folder, "--limit", "1")
    # As a killed run leaves it: row 1 scored (marked), row 2 being written.
    header, first = read_jsonl(out.scores_journal)
    marked = {**first, "terms": {**first["terms"], "reward": 123.0}}
    out.scores_journal.write_text(json.dumps(header) + "\n" + json.dumps(marked) + '\n{"key": [1, 0, "x"], "ter')
    # Batch sizes and the LM-head chunk change speed, not scores: the journal is still used.
    _score(model_dirs, inp, out.folder, "--batch_size", "1", "--logit_chunk_size", "7")
    rows = out.read_scored()
    assert rows[0]["reward"] == 123.0  # taken from the journal, not recomputed
    assert len(rows[1]["reward"]) == 3 and all(math.isfinite(r) for r in rows[1]["reward"])
    # Best-of-k of the same scores: nothing is scored again
    _score(model_dirs, inp, out.folder, "--keep_best", "true")
    assert {r["question"]: r["reward"] for r in out.read_scored()}["What is 12+30?"] == 123.0


def test_scores_of_other_settings_are_refused(model_dirs, tmp_path, rlt_error):
    inp, out = _write(tmp_path / "in.jsonl", ROWS[:1]), tmp_path / "out"
    _score(model_dirs, inp, out)
    assert "(kl_mean_coef: 3 → 1)" in rlt_error([
        "score", "--teacher", model_dirs[0], "--student", model_dirs[1], "--dataset", inp, "--output_dir", out,
        "--kl_mean_coef", "1"])


def test_prompts_and_coefficients_come_from_yaml_and_flags(model_dirs, tmp_path):
    inp = _write(tmp_path / "in.jsonl", ROWS[:1])
    _score(model_dirs, inp, tmp_path / "default")
    config = tmp_path / "config.yaml"
    config.write_text("student_system_prompt: Think first.\nkl_mean_coef: 0.0\nkl_max_coef: 0.0\n")
    _score(model_dirs, inp, tmp_path / "custom", "--config", str(config),
           "--teacher_system_prompt", "Explain.")
    default, custom = (ScoreOutputs(tmp_path / name).read_scored()[0] for name in ("default", "custom"))
    assert custom["r_kl"] == 0.0 and custom["reward"] == pytest.approx(custom["r_ss"])
    assert custom["r_ss"] != default["r_ss"]  # another student prompt, another likelihood
    info = json.loads((tmp_path / "custom" / "rlt_run.json").read_text())
    assert info["config"]["format"]["teacher_system_prompt"] == "Explain."


def test_unknown_options_are_errors(model_dirs, tmp_path, rlt_error):
    config = tmp_path / "recipe.yaml"
    config.write_text("kl_mean_coeff: 1.0\n")
    args = ["score", "--teacher", model_dirs[0], "--student", model_dirs[1], "--dataset", tmp_path / "in.jsonl",
            "--output_dir", tmp_path / "o"]
    assert "kl_mean_coeff" in rlt_error([*args, "--config", config])
    assert "--kl_mean_coeff" in rlt_error([*args, "--kl_mean_coeff", "1.0"])
    assert "invalid choice: 'kl'" in rlt_error([*args, "--kl_estimator", "kl"])


def test_a_bad_row_is_named(model_dirs, tmp_path):
    inp = _write(tmp_path / "in.jsonl", [ROWS[0], {"question": "q", "solution": "s"}])
    with pytest.raises(DataError, match=r"in.jsonl line 2: field 'explanation' must be a string, got missing"):
        _score(model_dirs, inp, tmp_path / "o", "--debug")


def test_every_row_format_scores_and_an_empty_question_is_refused(model_dirs, tmp_path):
    """score reads rows as every command does: any question field, conversations; the same row rules."""
    conversation = {"conversations": [
        {"from": "user", "value": "What is 2+2?"},
        {"from": "assistant", "value": "<|begin_of_thought|>t<|end_of_thought|>\n\n<|begin_of_solution|>4"
                                       "<|end_of_solution|>"}], "explanation": "2+2=4."}
    out = ScoreOutputs(tmp_path / "o")
    _score(model_dirs, _write(tmp_path / "in.jsonl", [{"problem": "What is 1+1?", "solution": "2",
                                                       "explanation": "1+1=2."}, conversation]), out.folder)
    assert [math.isfinite(r["reward"]) for r in out.read_scored()] == [True, True]
    empty = _write(tmp_path / "empty.jsonl", [{"question": " ", "solution": "2", "explanation": "e"}])
    with pytest.raises(DataError, match="line 1: field 'question' is empty"):
        _score(model_dirs, empty, tmp_path / "o2", "--debug")


def test_reward_buckets_pool_every_explanation_and_cut_it_by_reward(model_dirs, tmp_path):
    rows = [{**ROWS[1], "sources": ["right", "empty", "words"]}, ROWS[0], ROWS[2]]
    out = ScoreOutputs(tmp_path / "buckets")
    assert _score(model_dirs, _write(tmp_path / "in.jsonl", rows), out.folder, "--reward_buckets", "2") == 0
    scored = out.read_scored()
    pool = sorted([*zip(scored[0]["reward"], scored[0]["explanations"]), (scored[1]["reward"], "12+30=42."),
                   (scored[2]["reward"], "forty-two")])
    buckets = [read_jsonl(out.bucket(n)) for n in (1, 2)]
    assert [len(b) for b in buckets] == [2, 3]  # five explanations: parts of equal size, to one
    assert [(r["reward"], r["reasoning_trace"]) for b in buckets for r in b] == pool  # lowest first
    assert {r["source"] for b in buckets for r in b} == {"right", "empty", "words", None}
    summary = out.read_buckets()
    assert [s["rows"] for s in summary] == [2, 3] and summary[0]["max_reward"] <= summary[1]["min_reward"]
    assert summary[1]["mean_reward"] == pytest.approx(sum(r["reward"] for r in buckets[1]) / 3)
    assert sum(sum(s["sources"].values()) for s in summary) == 5
    # Cut into fewer parts from the same scores: nothing scored again, no part of the earlier cut left
    assert _score(model_dirs, tmp_path / "in.jsonl", out.folder, "--reward_buckets", "1") == 0
    assert len(read_jsonl(out.bucket(1))) == 5 and not out.bucket(2).exists()


def test_reward_buckets_must_be_positive_and_no_more_than_the_explanations(model_dirs, tmp_path, rlt_error):
    argv = ["score", "--teacher", model_dirs[0], "--student", model_dirs[1], "--dataset",
            _write(tmp_path / "in.jsonl", ROWS), "--output_dir", tmp_path / "out", "--reward_buckets"]
    assert rlt_error([*argv, "0"]) == "reward_buckets must be at least 1, got 0"
    assert rlt_error([*argv, "6"]) == (f"reward_buckets 6 is more than the 5 explanations of {tmp_path / 'in.jsonl'}: "
                                       "every part needs one at least")
    assert not (tmp_path / "out").exists()
