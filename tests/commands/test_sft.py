"""`rlt teacher-sft` and `rlt student-sft` on a tiny local model: records, masks, saving, resuming."""

from __future__ import annotations

import json

import pytest
import torch
from pinned import logged
from transformers import AutoModelForCausalLM

from rlt.cli import main as rlt
from rlt.data import DataError, Example
from rlt.errors import UserError
from rlt.formats import FormatConfig, SequenceBuilder
from rlt.records import student_records, teacher_records
from rlt.training import TrainingOutputs

EXAMPLES = [Example(f"What is {a}+{b}+{c}?", str(a + b + c), f"{a}+{b}={a + b}, {a + b}+{c}={a + b + c}")
            for a, b, c in [(12, 30, 41), (55, 17, 23), (90, 11, 64), (33, 33, 33)] * 8]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, char_tokenizer):
    from rlt.toy import build_causal_lm

    root = tmp_path_factory.mktemp("sft")
    build_causal_lm(char_tokenizer, "tiny", seed=0).save_pretrained(root / "base")
    char_tokenizer.save_pretrained(root / "base")
    (root / "train.jsonl").write_text("".join(json.dumps(e.to_dict()) + "\n" for e in EXAMPLES))
    return root


def _split(record: dict) -> tuple[list[int], list[int], list[int]]:
    """A record's prompt ids, completion ids (where the mask is 1, one run) and the ids after them."""
    mask = record["completion_mask"]
    start, end = mask.index(1), len(mask) - mask[::-1].index(1)
    assert mask == [0] * start + [1] * (end - start) + [0] * (len(mask) - end)
    return record["input_ids"][:start], record["input_ids"][start:end], record["input_ids"][end:]


def test_teacher_records_are_the_teacher_prompt_then_the_explanation(char_tokenizer):
    fmt = FormatConfig(teacher_system_prompt="Explain.")
    [record] = teacher_records(EXAMPLES[:1], char_tokenizer, fmt)
    prompt, completion, after = _split(record)
    assert after == []
    assert prompt == list(SequenceBuilder(char_tokenizer, fmt).teacher_prompt_ids("What is 12+30+41?", "83"))
    assert char_tokenizer.decode(prompt).endswith("<|begin_of_solution|>83<|end_of_solution|>\n\n"
                                                  "<|begin_of_explanation|>")
    assert char_tokenizer.decode(completion) == "12+30=42, 42+41=83<|end_of_explanation|><|im_end|>"


def test_student_records_are_the_student_prompt_then_the_answer(char_tokenizer):
    fmt = FormatConfig(student_system_prompt="Think.")
    [record] = student_records(EXAMPLES[:1], char_tokenizer, fmt)
    prompt, completion, after = _split(record)
    assert char_tokenizer.decode(after) == "\n"  # the rest of the rendered chat, outside the loss
    assert prompt == list(SequenceBuilder(char_tokenizer, fmt).student_prompt_ids("What is 12+30+41?"))
    assert char_tokenizer.decode(prompt).startswith("<|im_start|>system\nThink.<|im_end|>")
    assert char_tokenizer.decode(completion) == fmt.student_answer("12+30=42, 42+41=83", "83") + "<|im_end|>"


@pytest.mark.parametrize("command", ["teacher-sft", "student-sft"])
def test_rows_without_a_trace_are_bad_rows(command, workspace, tmp_path, caplog):
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps(r) + "\n" for r in [EXAMPLES[0].to_dict(), {"question": "q", "solution": "s"},
                                                             *[e.to_dict() for e in EXAMPLES[1:8]]]))
    args = ["--model", str(workspace / "base"), "--dataset", str(rows), "--output_dir", str(tmp_path / "m"),
            "--max_steps", "1", "--report_to", "none", "--per_device_train_batch_size", "4",
            "--teacher_system_prompt", "Explain.", "--student_system_prompt", "Think."]
    with pytest.raises(DataError, match="rows.jsonl line 2: no reasoning trace"):
        rlt([command, *args, "--debug"])
    assert not (tmp_path / "m").exists()
    with caplog.at_level("INFO", logger="rlt.data"):
        assert rlt([command, *args, "--on_error", "skip"]) == 0
    assert "loaded 8 rows, skipped 1 (line 2: no reasoning trace" in caplog.text


def _sft(command, workspace, out, *extra):
    return rlt([command, "--model", str(workspace / "base"), "--dataset", str(workspace / "train.jsonl"),
                "--output_dir", str(out), "--per_device_train_batch_size", "8", "--learning_rate", "3e-3",
                "--report_to", "none", "--save_steps", "3", "--logging_steps", "1",
                "--teacher_system_prompt", "Explain.", "--student_system_prompt", "Think.", *extra])


@pytest.mark.parametrize("command", ["teacher-sft", "student-sft"])
def test_sft_trains_saves_and_resumes(command, workspace, tmp_path, caplog, pins):
    """The losses of the 3 steps and of the 3 resumed ones are pinned (tests/data/pinned_recipes.json; regenerate:
    ``git worktree add /tmp/pins-head HEAD && .venv/bin/python tests/pinned.py --src /tmp/pins-head/src``)."""
    out = tmp_path / "model"
    assert _sft(command, workspace, out, "--max_steps", "3") == 0
    trained, base = (AutoModelForCausalLM.from_pretrained(path) for path in (out, workspace / "base"))
    assert not torch.equal(trained.lm_head.weight, base.lm_head.weight)  # saved after training
    info = json.loads((out / "rlt_run.json").read_text())
    assert info["command"] == command and info["config"]["training"]["bf16"] is False  # CPU default
    # A longer run restarted with --resume continues from step 3 instead of starting again.
    with caplog.at_level("INFO", logger="rlt.training"):
        _sft(command, workspace, out, "--max_steps", "6", "--resume", "true")
    assert f"resuming from {out / 'checkpoint-3'}" in caplog.text
    state = json.loads((out / "checkpoint-6" / "trainer_state.json").read_text())
    assert state["global_step"] == 6
    figures = logged(out / "metrics.jsonl", ("loss", "grad_norm", "num_tokens", "learning_rate"))
    assert list(figures) == [f"step {step}" for step in range(1, 7)] + ["end"]
    pins.check(f"test_sft {command}", figures)


def test_prompts_longer_than_max_length_are_a_clear_error(workspace, tmp_path):
    with pytest.raises(UserError, match="raise --max_length"):
        _sft("teacher-sft", workspace, tmp_path / "m", "--max_steps", "1", "--max_length", "20", "--debug")


def test_resume_skips_a_checkpoint_killed_while_saving(tmp_path):
    for step, complete in ((2, True), (4, True), (6, False), (10, False)):
        (tmp_path / f"checkpoint-{step}").mkdir()
        if complete:
            (tmp_path / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")
    (tmp_path / "checkpoint-notes").mkdir()
    assert TrainingOutputs(tmp_path).last_checkpoint() == tmp_path / "checkpoint-4"
    assert TrainingOutputs(tmp_path / "missing").last_checkpoint() is None
