"""Tests of rlt.data: sources, row formats, error messages, writing JSONL."""

from __future__ import annotations

import json
import re
from pathlib import Path

import datasets
import pandas as pd
import pytest
from conftest import SHARED_DATA, shared_data
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from rlt.data import (
    DataError,
    Example,
    RowRef,
    Rows,
    append_jsonl,
    load_examples,
    normalize_record,
    read_records,
    write_jsonl,
)
from rlt.formats import R1, SOLUTION, STRATOS, THOUGHT, TagStyle

SKY_T1 = SHARED_DATA / "reasoning_traces_sky_t1" / "Sky-T1-math-correct-5K-27B_math500"
STYLES = pytest.mark.parametrize("tags", [STRATOS, R1], ids=["stratos", "r1"])


def assistant_text(thought: str, solution: str, tags: TagStyle = STRATOS) -> str:
    return (f"{tags.begin(THOUGHT)}{thought}{tags.end(THOUGHT)}\n\n"
            f"{tags.begin(SOLUTION)}{solution}{tags.end(SOLUTION)}")


def stratos_row(question: str, thought: str, solution: str, tags: TagStyle = STRATOS) -> dict:
    return {"system": "You are a helpful assistant.",
            "conversations": [{"from": "user", "value": question},
                              {"from": "assistant", "value": assistant_text(thought, solution, tags)}]}


def write_lines(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


# Shared real data ----------------------------------------------------------------------------------


def test_math500() -> None:
    result = load_examples(shared_data("math500/test.jsonl"))
    assert len(result.items) == 500 and not result.skipped
    first = result.items[0]
    assert first.question == ("Convert the point $(0,3)$ in rectangular coordinates to polar coordinates.  "
                              "Enter your answer in the form $(r,\\theta),$ where $r > 0$ and "
                              "$0 \\le \\theta < 2 \\pi.$")
    assert first.solution.startswith("We have that $r = \\sqrt{0^2 + 3^2} = 3.$")
    assert first.solution.endswith("polar coordinates are $\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}.$")
    assert first.reasoning_trace is None


def test_aime24_question_is_problem() -> None:
    path = shared_data("aime24/test.jsonl")
    examples = load_examples(path).items
    records = [record for _, record in read_records(path)]
    assert len(examples) == 30
    assert [e.question for e in examples] == [r["problem"] for r in records]
    assert [e.solution for e in examples] == [r["solution"] for r in records]


def test_gsm8k_test_split_from_folder() -> None:
    examples = load_examples(shared_data("gsm8k"), split="test").items
    assert len(examples) == 1319
    assert examples[0].solution == ("Janet sells 16 - 3 - 4 = 9 duck eggs a day.\n"
                                    "She makes 9 * 2 = $18 every day at the farmer\u2019s market.\n#### 18")
    for example in examples:
        assert "<<" not in example.solution and ">>" not in example.solution
        assert re.search(r"\n#### [-\d,.]+$", example.solution), example.solution[-80:]


def test_sky_t1_traces_only_where_both_thought_tags_are_present() -> None:
    folder = shared_data(SKY_T1.relative_to(SHARED_DATA).as_posix())
    examples = load_examples(folder).items  # a folder holding one file: its only split
    codes = [record["code"][0] for _, record in read_records(folder)]
    thought = re.compile(re.escape("<|begin_of_thought|>") + "(.*?)" + re.escape("<|end_of_thought|>"), re.S)
    expected = [match.group(1) if (match := thought.search(code)) else None for code in codes]
    assert len(examples) == 500
    assert sum(trace is not None for trace in expected) == 194  # SOURCE.md: 196 end tags, 1 without begin
    assert [e.reasoning_trace for e in examples] == expected


def test_countdown_rows_become_questions_with_solutions() -> None:
    """Countdown rows (verl RL format) carry a target, not a reference solution, which the teacher needs:
    the loader finds one by exact search (rlt.countdown), and states the question."""
    result = load_examples(shared_data("countdown/test.parquet"), limit=20)
    assert len(result.items) == 20 and not result.skipped
    first = result.items[0]
    assert first.question.startswith("Using the numbers [96, 7, 37, 74]") and first.solution.endswith(" = 55")


# Conversation rows ---------------------------------------------------------------------------------


@STYLES
def test_stratos_conversations_jsonl(tmp_path: Path, tags: TagStyle) -> None:
    path = write_lines(tmp_path / "bespoke.jsonl", [stratos_row("What is 1+1?", "\nadd them\n", " 2 ", tags)])
    assert load_examples(path, tags=tags).items == [Example("What is 1+1?", " 2 ", "\nadd them\n")]


def test_messages_format_in_json_object(tmp_path: Path) -> None:
    row = {"messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "Q?"},
                        {"role": "assistant", "content": assistant_text("think", "A")}]}
    path = tmp_path / "chat.json"
    path.write_text(json.dumps({"data": [row]}), encoding="utf-8")
    assert load_examples(path).items == [Example("Q?", "A", "think")]


def test_parquet_conversations(tmp_path: Path) -> None:
    path = tmp_path / "train.parquet"
    pd.DataFrame([stratos_row("Q1", "t1", "s1"), stratos_row("Q2", "t2", "s2")]).to_parquet(path)
    assert [e.solution for e in load_examples(path).items] == ["s1", "s2"]


def test_missing_end_tag_names_file_row_and_tag(tmp_path: Path) -> None:
    broken = stratos_row("Q", "t", "s")
    answer = broken["conversations"][1]
    answer["value"] = answer["value"].replace("<|end_of_solution|>", "")
    path = write_lines(tmp_path / "bespoke.jsonl", [stratos_row("Q", "t", "s"), broken])
    expected = re.escape(f"{path} line 2: conversations: the assistant turn has no '<|end_of_solution|>' tag")
    with pytest.raises(DataError, match=expected) as error:
        load_examples(path)
    assert error.value.line == 2 and error.value.field == "conversations"


def test_wrong_tag_style_is_reported(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "r1.jsonl", [stratos_row("Q", "t", "s", R1)])
    with pytest.raises(DataError, match="'<\\|begin_of_thought\\|>' tag"):
        load_examples(path)


# Arbitrary text, plus text built from pieces of tags so that near-tags (``<|end_of_though``, ``</``) and
# tag-like neighbours of the real tags get exercised.
TAG_PIECES = ["<", "|", ">", "/", "<|", "|>", "</", "thought", "solution", "begin_of_", "end_of_", "\n\n"]
TEXTS = st.one_of(st.text(), st.lists(st.one_of(st.characters(), st.sampled_from(TAG_PIECES))).map("".join))


@settings(max_examples=200, deadline=None)
@given(question=TEXTS.filter(str.strip), thought=TEXTS, solution=TEXTS.filter(str.strip),
       style=st.sampled_from([STRATOS, R1]))
def test_conversation_round_trip(question: str, thought: str, solution: str, style: TagStyle) -> None:
    all_tags = [style.begin(s) for s in (THOUGHT, SOLUTION)] + [style.end(s) for s in (THOUGHT, SOLUTION)]
    assume(not any(tag in text for tag in all_tags for text in (question, thought, solution)))
    example = normalize_record(stratos_row(question, thought, solution, style), RowRef("x", row=1), style)
    assert example == Example(question, solution, thought)


# Flat rows and their errors ------------------------------------------------------------------------


def test_custom_format_and_precedence() -> None:
    def normalize(record: dict) -> Example:
        return normalize_record(record, RowRef("mem", row=1))

    assert normalize({"prompt": "P", "solution": "S", "reasoning_trace": "R"}).to_dict() == {
        "question": "P", "solution": "S", "reasoning_trace": "R"}
    # question+solution wins over a conversation and over answer; null fields count as absent.
    assert normalize({"question": None, "problem": "P", "solution": "S", "answer": "5",
                      "conversations": [{"from": "user", "value": "other"}]}) == Example("P", "S")
    assert normalize({"question": "Q", "answer": "2+2=<<2+2=4>>4\n#### 4"}) == Example("Q", "2+2=4\n#### 4")


@pytest.mark.parametrize(("record", "message"), [
    ({"question": "Q", "foo": 1},
     "gsm8k/test.jsonl row 17: no 'answer' or 'solution' field (fields: foo, question)"),
    ({"text": "x"}, "gsm8k/test.jsonl row 17: no question field"),
    ({"question": "Q", "solution": 3}, "row 17: field 'solution' is int, expected a string"),
    ({"question": ["Q"], "solution": "S"}, "row 17: field 'question' is list, expected a string"),
    ({"question": " \n", "solution": "S"}, "row 17: field 'question' is empty"),
    ({"question": "Q", "solution": ""}, "row 17: field 'solution' is empty"),
    ({"question": "Q", "answer": "4"},
     "row 17: field 'answer' does not end with a '#### <final answer>' line"),
    ({"conversations": "hi"}, "row 17: field 'conversations' is str, expected a list of turns"),
    ({"conversations": [{"from": "user", "value": "Q"}]}, "row 17: conversations: no assistant turn"),
    ({"messages": [{"role": "user", "content": "Q"},
                   {"role": "assistant", "content": assistant_text("t", " ")}]},
     "row 17: messages: the solution section is empty"),
    ({"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": [{"text": "x"}]}]},
     "row 17: messages[1] content is list, expected a string"),
])
def test_bad_rows(record: dict, message: str) -> None:
    with pytest.raises(DataError) as error:
        normalize_record(record, RowRef("gsm8k/test.jsonl", row=17))
    assert message in str(error.value)


def test_skip_counts_rows_and_limit(tmp_path: Path) -> None:
    rows = [{"question": f"q{i}", "solution": f"s{i}"} for i in range(6)]
    rows[1] = {"question": "q1"}
    rows[3]["solution"] = None
    path = write_lines(tmp_path / "rows.jsonl", rows)
    with pytest.raises(DataError, match="line 2:"):
        load_examples(path)
    result = load_examples(path, on_error="skip")
    assert [e.question for e in result.items] == ["q0", "q2", "q4", "q5"]
    assert [error.line for error in result.skipped] == [2, 4]
    assert [ref.index for ref in result.refs] == [0, 2, 4, 5]  # places among all rows, for resuming
    assert result.summary().startswith("loaded 4 rows, skipped 2 (line 2: no 'answer' or 'solution' field")
    assert [e.question for e in load_examples(path, on_error="skip", limit=2).items] == ["q0", "q2"]
    assert Rows([Example("q", "s")]).summary() == "loaded 1 rows"


def test_rows_are_numbered_as_the_user_finds_them(tmp_path: Path) -> None:
    """A JSONL row by its line (blank lines count), each file of a folder by its own name and row."""
    path = tmp_path / "blank_lines.jsonl"
    path.write_text('{"question": "q", "solution": "s"}\n\n\n{"question": "q2"}\n', encoding="utf-8")
    with pytest.raises(DataError, match=re.escape(f"{path} line 4: no 'answer' or 'solution'")):
        load_examples(path)
    folder = tmp_path / "shards"
    folder.mkdir()
    pd.DataFrame([{"question": "a", "solution": "1"}] * 3).to_parquet(folder / "train-00000-of-00002.parquet")
    pd.DataFrame([{"question": "b", "solution": "2"}, {"question": "c"}]).to_parquet(
        folder / "train-00001-of-00002.parquet")
    second = folder / "train-00001-of-00002.parquet"
    with pytest.raises(DataError, match=re.escape(f"{second} row 2: no 'answer' or 'solution'")):
        load_examples(folder)
    assert [ref.index for ref in load_examples(folder, on_error="skip").refs] == [0, 1, 2, 3]


def test_a_file_that_is_not_utf8_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.jsonl"
    path.write_bytes('{"question": "q", "solution": "s"}\n{"question": "caf\u00e9", "solution": "s"}\n'
                     .encode("latin-1"))
    with pytest.raises(DataError, match=re.escape(f"{path} line 2: not UTF-8 text (byte 0xe9)")):
        load_examples(path)
    whole = tmp_path / "latin1.json"
    whole.write_bytes('[\n{"question": "q", "solution": "s"},\n{"question": "\u00e9", "solution": "s"}\n]'
                      .encode("latin-1"))
    with pytest.raises(DataError, match=re.escape(f"{whole} line 3: not UTF-8 text")):
        load_examples(whole)
    bom = tmp_path / "bom.jsonl"
    bom.write_bytes(b"\xef\xbb\xbf" + json.dumps({"question": "q", "solution": "s"}).encode() + b"\n")
    assert load_examples(bom).items == [Example("q", "s")]


def test_invalid_json_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"question": "q", "solution": "s"}\n\n{"question": oops}\n', encoding="utf-8")
    with pytest.raises(DataError, match=re.escape(f"{path} line 3: not valid JSON")):
        list(read_records(path))
    whole = tmp_path / "bad.json"
    whole.write_text('[\n{"question": "q"},\n]', encoding="utf-8")
    with pytest.raises(DataError, match=re.escape(f"{whole} line 3: not valid JSON")):
        read_records(whole)


def test_read_records_keeps_fields_and_rejects_non_objects(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "rows.jsonl", [{"question": "q", "extra": [1, {"a": None}]}])
    assert list(read_records(path)) == [(RowRef(str(path), line=1), {"question": "q", "extra": [1, {"a": None}]})]
    path.write_text('{"question": "q"}\n[1, 2]\n', encoding="utf-8")
    with pytest.raises(DataError, match="line 2: expected an object, got list"):
        list(read_records(path))


# Folders and hub names -----------------------------------------------------------------------------


def test_saved_dataset_folders(tmp_path: Path) -> None:
    rows = [{"question": "q1", "solution": "s1"}, {"question": "q2", "solution": "s2"}]
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "single"))
    assert [e.question for e in load_examples(tmp_path / "single").items] == ["q1", "q2"]
    splits = datasets.DatasetDict({"train": datasets.Dataset.from_list(rows),
                                   "test": datasets.Dataset.from_list(rows[:1])})
    splits.save_to_disk(str(tmp_path / "dict"))
    assert len(load_examples(tmp_path / "dict").items) == 2
    assert len(load_examples(tmp_path / "dict", split="test").items) == 1


def test_folder_of_files_split_selection(tmp_path: Path) -> None:
    write_lines(tmp_path / "train.jsonl", [{"question": "train", "solution": "s"}])
    write_lines(tmp_path / "test.jsonl", [{"question": "test", "solution": "s"}])
    shard = tmp_path / "test-00001-of-00001.parquet"
    pd.DataFrame([{"question": "test2", "solution": "s"}]).to_parquet(shard)
    (tmp_path / "README.md").write_text("not data", encoding="utf-8")
    assert [e.question for e in load_examples(tmp_path).items] == ["train"]
    assert [e.question for e in load_examples(tmp_path, split="test").items] == ["test2", "test"]
    with pytest.raises(DataError, match=r"no split 'validation' \(splits: test, train\)"):
        load_examples(tmp_path, split="validation")


def test_missing_local_path_is_not_sent_to_the_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("rlt.data._open_hub", lambda *_: pytest.fail("sent to the hub"))
    with pytest.raises(DataError, match="nope.jsonl: no such file or folder"):
        load_examples(tmp_path / "nope.jsonl")
    (tmp_path / "runs").mkdir()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError, match="runs/rows: no such file or folder"):  # hub-like, but runs/ is here
        load_examples("runs/rows")


def test_hub_name(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def fake_load_dataset(name: str, subset: str | None, split: str) -> datasets.Dataset:
        calls.append((name, subset, split))
        return datasets.Dataset.from_list([stratos_row("Q", "t", "s")])

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    monkeypatch.setattr(datasets, "get_dataset_split_names", lambda name, subset: ["train"])
    result = load_examples("bespokelabs/Bespoke-Stratos-17k")
    assert result.items == [Example("Q", "s", "t")]
    assert calls == [("bespokelabs/Bespoke-Stratos-17k", None, "train")]
    monkeypatch.setattr(datasets, "get_dataset_split_names", lambda name, subset: ["test", "validation"])
    with pytest.raises(DataError, match=r"org/name: several splits \(test, validation\)"):
        load_examples("org/name")
    bad = datasets.Dataset.from_list([{"question": "q"}])
    monkeypatch.setattr(datasets, "load_dataset", lambda name, subset, split: bad)
    with pytest.raises(DataError, match=re.escape("org/name [test] row 1: no 'answer' or 'solution'")):
        load_examples("org/name", split="test")


def test_hub_subsets_are_read_one_after_the_other(monkeypatch: pytest.MonkeyPatch) -> None:
    """A preset's subsets (AIME 2025's two papers), each row named by its own subset."""
    def fake_load_dataset(name: str, subset: str, split: str) -> datasets.Dataset:
        return datasets.Dataset.from_list([{"question": f"{subset} q", "solution": "s"}, {"question": "q"}])

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    rows = load_examples("org/exam", split="test", subset="I,II", on_error="skip")
    assert [e.question for e in rows.items] == ["I q", "II q"] and [ref.index for ref in rows.refs] == [0, 2]
    assert [str(error).split(":")[0] for error in rows.skipped] == ["org/exam (I) [test] row 2",
                                                                    "org/exam (II) [test] row 2"]


# Writing -------------------------------------------------------------------------------------------


def test_write_and_append_jsonl_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "out" / "rows.jsonl"
    rows = [{"question": "Σ x² — ∞?", "solution": "日本語 🚀", "n": 1}, {"question": "é", "solution": None}]
    write_jsonl(path, rows)
    assert "日本語 🚀" in path.read_text(encoding="utf-8")  # readable, not \u-escaped
    assert [record for _, record in read_records(path)] == rows
    write_jsonl(path, rows[:1])  # replaces, leaves no temporary file behind
    append_jsonl(path, rows[1:])
    assert [record for _, record in read_records(path)] == rows
    assert sorted(p.name for p in path.parent.iterdir()) == ["rows.jsonl"]
