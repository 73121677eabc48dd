"""A user's mistake (bad row, option, path, model) is one line ``error: …``, exit status 2, found before any
hub call or weight load, and a run that cannot start writes nothing."""

from __future__ import annotations

import json

import pytest

from rlt.cli import main as rlt
from rlt.errors import UserError


@pytest.fixture
def rows(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps({"question": "What is 1+1?", "solution": "2", "explanation": "1+1=2"}) + "\n")
    return path


def _no_weights_or_hub(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("loaded weights or asked the hub")

    monkeypatch.setattr("transformers.AutoModelForCausalLM.from_pretrained", refuse)
    monkeypatch.setattr("huggingface_hub.hf_hub_download", refuse)


def test_a_missing_model_folder_is_named_at_once(tmp_path, rows, rlt_error, monkeypatch):
    _no_weights_or_hub(monkeypatch)
    out = tmp_path / "eval"
    message = rlt_error(["evaluate", "--model", tmp_path / "nope", "--dataset", rows, "--output_dir", out])
    assert message == f"model {tmp_path / 'nope'}: no such folder"
    assert not out.exists()


def test_a_hub_like_name_under_a_local_folder_is_a_local_path(tmp_path, rows, rlt_error, monkeypatch):
    _no_weights_or_hub(monkeypatch)
    (tmp_path / "runs").mkdir()
    monkeypatch.chdir(tmp_path)
    assert rlt_error(["distill", "--teacher", "runs/teacher_rl", "--dataset", rows, "--output_dir", "out"]) == (
        "teacher runs/teacher_rl: no such folder")


def test_a_folder_that_is_not_a_model_and_an_uncached_hub_name_offline(tmp_path, rows, rlt_error, monkeypatch):
    _no_weights_or_hub(monkeypatch)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    (tmp_path / "empty").mkdir()
    args = ["--dataset", rows, "--output_dir", tmp_path / "out"]
    assert "has no config.json" in rlt_error(["evaluate", "--model", tmp_path / "empty", *args])
    assert "the hub is offline" in rlt_error(["evaluate", "--model", "no-such-org/no-such-model", *args])


def test_different_tokenizers_are_refused_before_any_weights_load(char_models, tmp_path, bpe_tokenizer, rows,
                                                                  rlt_error, monkeypatch):
    from rlt.toy import build_causal_lm

    other = tmp_path / "bpe_student"
    build_causal_lm(bpe_tokenizer, "tiny").save_pretrained(other)
    bpe_tokenizer.save_pretrained(other)
    _no_weights_or_hub(monkeypatch)
    for argv in (["teacher-rl", "--model", char_models / "teacher", "--student", other, "--dataset", rows,
                  "--output_dir", tmp_path / "rl", "--report_to", "none"],
                 ["distill", "--teacher", char_models / "teacher", "--best_of_k_student", other, "--dataset", rows,
                  "--output_dir", tmp_path / "distill"],
                 ["score", "--teacher", char_models / "teacher", "--student", other, "--dataset", rows,
                  "--output_dir", tmp_path / "scored"]):
        assert "share one vocabulary" in rlt_error(argv)
    assert not any((tmp_path / name).exists() for name in ("rl", "distill", "scored"))


@pytest.mark.parametrize(("flags", "expected"), [
    (["--on_error", "maybe"], "invalid choice: 'maybe' (choose from 'raise', 'skip')"),
    (["--temperature", "-1"], "temperature must be a finite number >= 0"),
    (["--tag_format", "xml"], "invalid choice: 'xml'"),
    (["--no_such_option", "1"], "--no_such_option"),
    (["--teacher_temperature", "0.5", "--best_of_k_student", "s"], "teacher_temperature=0.5 but the teacher samples"),
])
def test_a_bad_option_is_one_line(char_models, rows, tmp_path, rlt_error, flags, expected):
    argv = ["distill", "--teacher", char_models / "teacher", "--dataset", rows, "--output_dir", tmp_path / "o"]
    assert expected in rlt_error([*argv, *flags])


def test_a_bad_row_names_file_and_row(char_models, tmp_path, rlt_error):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "q", "solution": "s"}\n{"question": "q2"}\n')
    assert rlt_error(["distill", "--teacher", char_models / "teacher", "--dataset", bad,
                      "--output_dir", tmp_path / "o"]).startswith(f"{bad} row 2: no 'answer' or 'solution' field")


def test_debug_shows_the_traceback(tmp_path, rows, monkeypatch):
    argv = ["evaluate", "--model", str(tmp_path / "nope"), "--dataset", str(rows), "--output_dir", str(tmp_path / "o")]
    with pytest.raises(UserError, match="no such folder"):
        rlt([*argv, "--debug"])
    monkeypatch.setenv("RLT_DEBUG", "1")
    with pytest.raises(UserError, match="no such folder"):
        rlt(argv)
