"""rlt.toy.graded and `rlt toy graded`: explanations of graded quality for reward against outcome."""

from __future__ import annotations

import json

import pytest

from rlt.cli import main as rlt
from rlt.commands.toy import GradedOutputs
from rlt.data import Example
from rlt.toy.graded import GRADES, graded_rows
from rlt.toy.task import AdditionTask, explanation_kind, gold_explanation, numbers_of

EXAMPLES, _ = AdditionTask(seed=3).splits(12, 0)


def _samples(examples, text):
    return {e.question: text(e) for e in examples}


def test_every_question_gets_each_grade_and_each_teachers_explanation():
    samples = {"warm": _samples(EXAMPLES, lambda e: f"The answer is {e.solution}."),
               "rl": _samples(EXAMPLES, lambda e: e.reasoning_trace)}
    rows = graded_rows(EXAMPLES, samples, seed=1)
    assert [r["question"] for r in rows] == [e.question for e in EXAMPLES]
    for i, (row, example) in enumerate(zip(rows, EXAMPLES)):
        numbers = numbers_of(example.question)
        assert row["sources"] == [*GRADES, "warm", "rl"] and len(row["explanations"]) == len(GRADES) + 2
        made = dict(zip(row["sources"], row["explanations"]))
        assert all(explanation_kind(numbers, made[grade]) == grade for grade in GRADES if grade != "unrelated")
        assert made["unrelated"] == gold_explanation(numbers_of(EXAMPLES[(i + 1) % len(EXAMPLES)].question))
        assert (made["warm"], made["rl"]) == (f"The answer is {example.solution}.", example.reasoning_trace)
    assert graded_rows(EXAMPLES, samples, seed=1) == rows
    assert graded_rows(EXAMPLES, samples, seed=2) != rows  # the slips are drawn from the seed


def test_a_question_a_teacher_did_not_explain_is_named():
    with pytest.raises(ValueError, match=r"rl has no explanation of 'What is"):
        graded_rows(EXAMPLES, {"rl": _samples(EXAMPLES[1:], lambda e: "")})


def _write(path, examples):
    path.write_text("".join(json.dumps({**e.to_dict(), "reasoning_trace": e.reasoning_trace}) + "\n"
                            for e in examples))
    return path


def test_graded_command_writes_rows_and_reuses_them(tmp_path):
    warm, rl = _write(tmp_path / "warm.jsonl", EXAMPLES), _write(tmp_path / "rl.jsonl", EXAMPLES[::-1])
    out = GradedOutputs(tmp_path / "graded")
    argv = ["toy", "graded", "--samples", f"warm={warm},rl={rl}", "--output_dir", str(out.folder)]
    assert rlt(argv) == 0
    rows = out.read_graded()
    assert [r["question"] for r in rows] == [e.question for e in EXAMPLES]  # the first file's questions, in order
    assert rows[0]["sources"][-2:] == ["warm", "rl"]
    stamp = out.graded.stat().st_mtime_ns
    assert rlt(argv) == 0 and out.graded.stat().st_mtime_ns == stamp  # finished: not written again


@pytest.mark.parametrize(("samples", "message"), [
    ("warm", "samples takes NAME=PATH items, comma-separated, got 'warm'"),
    ("=x.jsonl", "samples takes NAME=PATH items"),
    ("a=x.jsonl,a=y.jsonl", "samples: the name 'a' is given twice; give each file its own name"),
    ("gold=x.jsonl", "samples: the name 'gold' is a grade's name; give each file its own name"),
])
def test_graded_mistakes_are_one_line(tmp_path, rlt_error, samples, message):
    assert rlt_error(["toy", "graded", "--samples", samples, "--output_dir", tmp_path / "out"]).startswith(message)
    assert not (tmp_path / "out").exists()


def test_a_teacher_file_missing_a_question_is_one_line(tmp_path, rlt_error):
    warm, rl = _write(tmp_path / "warm.jsonl", EXAMPLES), _write(tmp_path / "rl.jsonl", EXAMPLES[:-1])
    message = rlt_error(["toy", "graded", "--samples", f"warm={warm},rl={rl}", "--output_dir", tmp_path / "out"])
    assert message == f"samples: rl has no explanation of {EXAMPLES[-1].question!r}"


def test_a_bad_row_in_a_teacher_file_is_named(tmp_path, rlt_error):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(Example("What is 50+50+50?", "150").to_dict()) + "\n{\"question\": 3}\n")
    message = rlt_error(["toy", "graded", "--samples", f"warm={bad}", "--output_dir", tmp_path / "out"])
    assert message.startswith(f"{bad} line 2")
