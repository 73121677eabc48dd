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
                      "--output_dir", tmp_path / "o"]).startswith(f"{bad} line 2: no 'answer' or 'solution' field")


def test_debug_shows_the_traceback(tmp_path, rows, monkeypatch):
    argv = ["evaluate", "--model", str(tmp_path / "nope"), "--dataset", str(rows), "--output_dir", str(tmp_path / "o")]
    with pytest.raises(UserError, match="no such folder"):
        rlt([*argv, "--debug"])
    monkeypatch.setenv("RLT_DEBUG", "1")
    with pytest.raises(UserError, match="no such folder"):
        rlt(argv)


# Every mistake of a careless user, one row each: what is given, and the one line that names it. Each is found
# before any weights load, and a run that cannot start writes nothing.

LATIN1_ROWS = ('{"question": "q", "solution": "s", "explanation": "e", "reasoning_trace": "t"}\n'
               '{"question": "caf\u00e9", "solution": "s"}\n')


def _latin1(tmp_path):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(LATIN1_ROWS.encode("latin-1"))
    return path


def _damaged(char_models, tmp_path, name, damage):
    import shutil

    folder = tmp_path / name
    shutil.copytree(char_models / "teacher", folder)
    damage(folder / "model.safetensors")
    return folder


def _truncate(path):
    path.write_bytes(path.read_bytes()[:-100])


def _long_solution(tmp_path):
    path = tmp_path / "long.jsonl"
    path.write_text(json.dumps({"question": "What is 1+1?", "solution": "2" * 200_000}) + "\n")
    return path


def _file(tmp_path, name: str, content: bytes):
    path = tmp_path / name
    path.write_bytes(content)
    return path


def _bad_yaml(tmp_path, text: bytes):
    return _file(tmp_path, "recipe.yaml", text)


def _sft(model, rows, *flags):
    return ["teacher-sft", "--model", model, "--dataset", rows, "--report_to", "none", *flags]


BAD_INPUTS = {
    # name: (argv builder (models, tmp_path, rows) -> argv without --output_dir, the line's expected part)
    "distill, non-UTF-8 rows": (lambda m, t, r: ["distill", "--teacher", m / "teacher", "--dataset", _latin1(t)],
                                "latin1.jsonl line 2: not UTF-8 text (byte 0xe9)"),
    "evaluate, non-UTF-8 rows": (lambda m, t, r: ["evaluate", "--model", m / "student", "--dataset", _latin1(t)],
                                 "latin1.jsonl line 2: not UTF-8 text"),
    "score, non-UTF-8 rows": (lambda m, t, r: ["score", "--teacher", m / "teacher", "--student", m / "student",
                                               "--dataset", _latin1(t)], "latin1.jsonl line 2: not UTF-8 text"),
    "teacher-sft, non-UTF-8 rows": (lambda m, t, r: _sft(m / "teacher", _latin1(t)),
                                    "latin1.jsonl line 2: not UTF-8 text"),
    "teacher-rl, non-UTF-8 rows": (lambda m, t, r: ["teacher-rl", "--model", m / "teacher", "--student",
                                                    m / "student", "--dataset", _latin1(t), "--report_to", "none"],
                                   "latin1.jsonl line 2: not UTF-8 text"),
    "a YAML config with a syntax error": (
        lambda m, t, r: ["distill", "--teacher", m / "teacher", "--dataset", r, "--config",
                         _bad_yaml(t, b"temperature: 0.7\nnum_samples: [2\n")], "recipe.yaml line 3: not valid YAML"),
    "a YAML config that is not UTF-8": (
        lambda m, t, r: ["distill", "--teacher", m / "teacher", "--dataset", r, "--config",
                         _bad_yaml(t, "teacher_system_prompt: caf\u00e9\n".encode("latin-1"))],
        "recipe.yaml: not UTF-8 text (byte 0xe9"),
    "score --batch_size 0": (lambda m, t, r: ["score", "--teacher", m / "teacher", "--student", m / "student",
                                              "--dataset", r, "--batch_size", "0"],
                             "batch_size must be at least 1, got 0"),
    "distill --score_batch_size 0": (lambda m, t, r: ["distill", "--teacher", m / "teacher", "--dataset", r,
                                                      "--score_batch_size", "0"],
                                     "score_batch_size must be at least 1"),
    "teacher-sft --per_device_train_batch_size 0": (
        lambda m, t, r: _sft(m / "teacher", r, "--per_device_train_batch_size", "0"),
        "per_device_train_batch_size must be at least 1, got 0"),
    "teacher-sft with nothing to train": (
        lambda m, t, r: _sft(m / "teacher", r, "--max_steps", "-5", "--num_train_epochs", "0"),
        "nothing to train: max_steps=-5 and num_train_epochs=0"),
    "a model.safetensors cut short": (
        lambda m, t, r: ["distill", "--teacher", _damaged(m, t, "cut", _truncate), "--dataset", r],
        "model.safetensors is damaged (Error while deserializing header: incomplete metadata"),
    "a model folder without its weights": (
        lambda m, t, r: _sft(_damaged(m, t, "no_weights", lambda p: p.unlink()), r),
        "the folder has no weights (model.safetensors, model.safetensors.index.json, pytorch_model.bin, ...)"),
    "a 200 KB solution": (lambda m, t, r: ["distill", "--teacher", m / "teacher", "--dataset", _long_solution(t)],
                          "long.jsonl line 1: the teacher prompt is 201229 tokens, the model takes 4096"),
    "distill into a file": (lambda m, t, r: ["distill", "--teacher", m / "teacher", "--dataset", r,
                                             "--output_dir", _file(t, "taken", b"")], "taken: a file, not a folder"),
    "distill into a folder under a file": (
        lambda m, t, r: ["distill", "--teacher", m / "teacher", "--dataset", r, "--output_dir",
                         _file(t, "taken", b"") / "run"], "cannot make the folder (Not a directory)"),
    "a hub dataset, offline": (lambda m, t, r: ["evaluate", "--model", m / "student", "--benchmark", "aime24"],
                               "AI-MO/aimo-validation-aime: cannot be loaded from the hub"),
    "score, an empty question": (
        lambda m, t, r: ["score", "--teacher", m / "teacher", "--student", m / "student", "--dataset",
                         _file(t, "empty.jsonl", b'{"question": " ", "solution": "2", "explanation": "e"}\n')],
        "empty.jsonl line 1: field 'question' is empty"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_every_mistake_is_one_line_before_any_weights_load(case, char_models, tmp_path, rows, rlt_error, monkeypatch):
    build, expected = BAD_INPUTS[case]
    argv = build(char_models, tmp_path, rows)
    _no_weights_or_hub(monkeypatch)
    out = tmp_path / "out"
    assert expected in rlt_error(argv if "--output_dir" in argv else [*argv, "--output_dir", out])
    assert not out.exists()  # a run that cannot start writes nothing


def test_a_full_disk_is_one_line_and_keeps_what_was_saved(char_models, tmp_path, capsys, monkeypatch):
    import errno

    from rlt.commands.evaluate import EvaluateOutputs
    from rlt.data import read_jsonl
    from rlt.jobs import Journal

    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps({"question": f"What is {i}+1?", "solution": str(i + 1)}) + "\n"
                            for i in range(4)))
    out = EvaluateOutputs(tmp_path / "eval")
    argv = ["evaluate", "--model", str(char_models / "student"), "--dataset", str(rows), "--output_dir",
            str(out.folder), "--temperature", "0", "--max_new_tokens", "4", "--batch_size", "2", "--match", "exact"]
    append = Journal.append

    def fill_the_disk(journal, entries):
        if len(read_jsonl(journal.path)) > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        append(journal, entries)

    monkeypatch.setattr(Journal, "append", fill_the_disk)
    capsys.readouterr()
    assert rlt(argv) == 2
    err = capsys.readouterr().err
    assert "error: no space left on the disk: what was saved before stays; free some space and run the same " \
           "command again to continue" in err and "Traceback" not in err
    assert len(read_jsonl(out.completions_journal)) == 1 + 2  # the first batch of two problems
    monkeypatch.undo()
    assert rlt(argv) == 0 and len(out.read_results()) == 4
