"""`rlt evaluate` end to end on a tiny local model: outputs, pass@1, resume, bad rows; and the checking
logic on hand-made completions, since an untrained model answers nothing right."""

from __future__ import annotations

import json
import re

import pytest

from rlt.arguments import DataArguments, InferenceArguments
from rlt.cli import main as rlt
from rlt.commands.evaluate import EvaluateArguments, _fingerprint, check_problem, summarize
from rlt.data import DataError
from rlt.errors import UserError
from rlt.formats import FormatConfig
from rlt.generation import SamplingConfig
from rlt.problems import Problem

ROWS = [
    {"question": "What is 1+2?", "solution": "1+2=3", "answer": "3"},
    {"question": "What is 30+12?", "solution": "42"},  # the toy world's rows: the solution is the answer
    {"problem": "What is 5+5?", "solution": "\\boxed{10}", "answer": "10"},
]
GREEDY = ["--temperature", "0", "--max_new_tokens", "8", "--match", "exact", "--student_system_prompt", "Think."]
RESULT_FIELDS = {"index", "question", "reference", "predictions", "correct", "pass_at_1", "completions", "finished"}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, char_tokenizer):
    from rlt.toy import build_causal_lm, save_model_and_tokenizer

    return save_model_and_tokenizer(build_causal_lm(char_tokenizer, "tiny", seed=3),
                                    char_tokenizer, tmp_path_factory.mktemp("model") / "student")


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _read(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def _evaluate(model_dir, dataset, output_dir, *extra):
    return rlt(["evaluate", "--model", str(model_dir), "--dataset", str(dataset), "--output_dir", str(output_dir),
                *extra])


def test_greedy_run_writes_results_summary_and_run_info(model_dir, tmp_path):
    out = tmp_path / "eval"
    assert _evaluate(model_dir, _write(tmp_path / "rows.jsonl", ROWS), out, *GREEDY) == 0
    results, summary = _read(out / "results.jsonl"), json.loads((out / "summary.json").read_text())
    assert [r["index"] for r in results] == [0, 1, 2] and all(set(r) == RESULT_FIELDS for r in results)
    assert [r["reference"] for r in results] == ["3", "42", "10"]
    assert all(len(r["completions"]) == len(r["correct"]) == len(r["predictions"]) == 1 for r in results)
    assert summary["num_samples"] == 1 and summary["greedy"] and summary["match"] == "exact"  # greedy: 1 sample
    assert summary["pass@1"] == pytest.approx(sum(r["pass_at_1"] for r in results) / 3)
    assert summary["pass@1"] == pytest.approx(sum(sum(r["correct"]) for r in results) / 3)
    assert summary["no_answer"] == sum(p is None for r in results for p in r["predictions"])
    assert summary["unfinished"] == sum(not f for r in results for f in r["finished"])
    assert summary["problems"] == 3 and summary["max_new_tokens"] == 8 and summary["wall_seconds"] > 0
    assert not (out / "results.partial.jsonl").exists()
    info = json.loads((out / "rlt_run.json").read_text())
    assert info["command"] == "evaluate" and info["config"]["format"]["student_system_prompt"] == "Think."


def test_sampling_defaults_to_the_reasoning_settings(model_dir, tmp_path):
    out = tmp_path / "eval"
    _evaluate(model_dir, _write(tmp_path / "rows.jsonl", ROWS), out, "--num_samples", "2", "--max_new_tokens", "4",
              "--limit", "2")
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["temperature"], summary["top_p"], summary["greedy"]) == (0.6, 0.95, False)
    results = _read(out / "results.jsonl")
    assert len(results) == 2 and all(len(r["completions"]) == 2 for r in results)
    assert summary["completions"] == 4 and summary["match"] == "math"


def _header(model_dir, dataset, out):
    args = EvaluateArguments(model=str(model_dir), output_dir=str(out))
    sampling = SamplingConfig(temperature=0.0, top_p=0.95, num_samples=1, max_new_tokens=8)
    return {"fingerprint": _fingerprint(args, DataArguments(dataset=str(dataset), split="test"), InferenceArguments(),
                                        sampling, FormatConfig(student_system_prompt="Think."))}


def test_a_killed_run_resumes_without_regenerating(model_dir, tmp_path):
    dataset, out = _write(tmp_path / "rows.jsonl", ROWS), tmp_path / "eval"
    out.mkdir()
    # Problem 0 was generated (marked: a right answer no untrained model writes); problem 1's entry is for
    # another question (the file changed), so it is generated again; the last line was being written.
    marked = {"index": 0, "question": ROWS[0]["question"], "completions": ["<|begin_of_solution|>3<|end_of_solution|>"],
              "finished": [True]}
    stale = {"index": 1, "question": "What is 2+2?", "completions": ["<|begin_of_solution|>42<|end_of_solution|>"],
             "finished": [True]}
    (out / "results.partial.jsonl").write_text("".join(json.dumps(line) + "\n" for line in (
        _header(model_dir, dataset, out), marked, stale)) + '{"index": 2, "questi')
    _evaluate(model_dir, dataset, out, *GREEDY)
    results = _read(out / "results.jsonl")
    assert results[0]["completions"] == marked["completions"] and results[0]["correct"] == [True]
    assert results[1]["completions"] != stale["completions"] and len(results[2]["completions"]) == 1
    assert json.loads((out / "summary.json").read_text())["pass@1"] >= 1 / 3
    assert not (out / "results.partial.jsonl").exists()


def test_partial_completions_from_other_settings_are_refused(model_dir, tmp_path):
    out = tmp_path / "eval"
    out.mkdir()
    (out / "results.partial.jsonl").write_text(json.dumps({"fingerprint": "another"}) + "\n")
    with pytest.raises(UserError, match="delete it"):
        _evaluate(model_dir, _write(tmp_path / "rows.jsonl", ROWS), out, *GREEDY, "--debug")


@pytest.mark.parametrize(("bad_row", "message"), [
    ({"id": 7, "solution": "3"}, r"row 2: no question.*fields: id, solution"),
    ({"question": "What is 1+1?", "solution": "Add.\nDone."}, r"row 2: no reference answer"),
])
def test_a_bad_row_is_named_before_any_model_is_loaded(tmp_path, bad_row, message, rlt_error):
    dataset = _write(tmp_path / "rows.jsonl", [ROWS[0], bad_row])
    with pytest.raises(DataError, match=message):
        _evaluate(tmp_path / "no-model", dataset, tmp_path / "eval", *GREEDY, "--debug")
    assert re.search(message, rlt_error(["evaluate", "--model", tmp_path / "no-model", "--dataset", dataset,
                                         "--output_dir", tmp_path / "eval", *GREEDY]))
    assert not (tmp_path / "eval").exists()  # a run that cannot start writes nothing


def test_vllm_backend_without_vllm_says_how_to_install(model_dir, tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "vllm", None)  # as if not installed, wherever the tests run
    with pytest.raises(ImportError, match="rlt\\[vllm\\]"):
        _evaluate(model_dir, _write(tmp_path / "rows.jsonl", ROWS[:1]), tmp_path / "eval", *GREEDY,
                  "--backend", "vllm")


# Checking, on hand-made completions ------------------------------------------------------------------


def test_check_problem_and_summary_on_known_completions():
    fmt = FormatConfig()
    half = check_problem(Problem(4, "What is half of one?", "\\frac{1}{2}"), [
        "<|begin_of_thought|>hmm<|end_of_thought|>\n\n<|begin_of_solution|>\\boxed{0.5}<|end_of_solution|>",
        "<|begin_of_solution|>It is \\boxed{\\frac{1}{3}}.<|end_of_solution|>",
        "<|begin_of_thought|>one half, then",  # truncated: no answer
        "#### 1/2",
    ], [True, True, False, True], fmt, "math")
    assert half["predictions"] == ["0.5", "\\frac{1}{3}", None, "1/2"]
    assert half["correct"] == [True, False, False, True] and half["pass_at_1"] == 0.5
    toy = check_problem(Problem(5, "What is 47+38+26?", "111"), [
        "<|begin_of_solution|>111<|end_of_solution|>", "<|begin_of_solution|>111.0<|end_of_solution|>",
    ], [True, False], fmt, "exact")
    assert toy["correct"] == [True, False] and toy["index"] == 5
    summary = summarize([half, toy])
    assert summary == {"pass@1": 0.5, "problems": 2, "completions": 6, "no_answer": 1, "unfinished": 2}
