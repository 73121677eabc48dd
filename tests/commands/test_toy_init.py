"""`rlt toy init` end to end: the files it writes, reuse of an existing world, refusals, usage errors."""

from __future__ import annotations

import json
import re

import pytest

from rlt.cli import main as rlt
from rlt.errors import UserError
from rlt.toy.task import CORRUPTIONS

DATA_FILES = ("train", "heldout", "teacher_warmup", "answer_only", "explanations_by_kind")


def _init(output, *extra):
    return rlt(["toy", "init", "--output_dir", str(output), "--n_train", "200", "--n_heldout", "50",
                "--pretrain_max_steps", "2", *extra])


def _lines(path):
    return path.read_text().splitlines()


def test_init_writes_the_world(tmp_path):
    out = tmp_path / "world"
    assert _init(out) == 0
    rows = {name: _lines(out / "data" / f"{name}.jsonl") for name in DATA_FILES}
    assert {name: len(lines) for name, lines in rows.items()} == {
        "train": 200, "heldout": 50, "teacher_warmup": 200, "answer_only": 200,
        "explanations_by_kind": 50 * (1 + len(CORRUPTIONS))}
    assert json.loads(rows["train"][0]).keys() == {"question", "solution", "reasoning_trace"}
    assert {json.loads(line)["kind"] for line in rows["explanations_by_kind"]} == {"gold", *CORRUPTIONS}
    for name in ("config.json", "model.safetensors", "tokenizer.json", "chat_template.jinja"):
        assert (out / "base_model" / name).is_file()
    manifest = json.loads((out / "world.json").read_text())
    assert manifest["config"] == {
        "operands": 3, "low": 50, "high": 99, "operators": "+", "n_train": 200, "n_heldout": 50,
        "model_size": "tiny", "pretrain_max_steps": 2, "pretrain_target_fact_accuracy": 0.98,
        "pretrain_learning_rate": 5e-3, "pretrain_operators": "+", "base_model": None, "seed": 0}
    assert manifest["pretraining"]["steps"] == 2 and 0.0 <= manifest["pretraining"]["fact_accuracy"] <= 1.0
    assert manifest["rows"]["heldout"] == 50


def test_init_again_reuses_the_world(tmp_path):
    out = tmp_path / "world"
    assert _init(out) == 0
    written = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    assert _init(out) == 0
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == written


def test_init_refuses_a_world_with_another_config(tmp_path, rlt_error):
    assert _init(tmp_path) == 0
    argv = ["toy", "init", "--output_dir", tmp_path, "--n_train", "200", "--n_heldout", "50",
            "--pretrain_max_steps", "2"]
    assert re.search(r"made with other settings \(seed: 0 → 1\)", rlt_error([*argv, "--seed", "1"]))


def test_init_reads_a_yaml_config(tmp_path):
    out, config_file = tmp_path / "world", tmp_path / "world.yaml"
    config_file.write_text("operands: 3\nn_train: 40\nmodel_size: tiny\n")
    assert rlt(["toy", "init", "--config", str(config_file), "--output_dir", str(out),
                "--n_train", "30", "--n_heldout", "10", "--operands", "2", "--pretrain_max_steps", "0"]) == 0
    config = json.loads((out / "world.json").read_text())["config"]
    assert config == {"operands": 2, "low": 50, "high": 99, "operators": "+", "n_train": 30, "n_heldout": 10,
                      "model_size": "tiny", "pretrain_max_steps": 0, "pretrain_target_fact_accuracy": 0.98,
                      "pretrain_learning_rate": 5e-3, "pretrain_operators": "+", "base_model": None, "seed": 0}


def test_init_copies_a_given_base_model_and_its_pretraining_record(tmp_path):
    first, second = tmp_path / "seed0", tmp_path / "seed1"
    assert _init(first) == 0
    assert _init(second, "--seed", "1", "--base_model", str(first / "base_model")) == 0
    for name in ("model.safetensors", "tokenizer.json"):
        assert (second / "base_model" / name).read_bytes() == (first / "base_model" / name).read_bytes()
    manifests = [json.loads((world / "world.json").read_text()) for world in (first, second)]
    assert manifests[1]["pretraining"] == manifests[0]["pretraining"]
    assert manifests[1]["config"]["base_model"] == str(first / "base_model")
    assert _lines(second / "data" / "train.jsonl") != _lines(first / "data" / "train.jsonl")


def test_a_subtraction_task_reads_the_same_frame_from_a_base_that_knows_subtraction(tmp_path, rlt_error):
    base = tmp_path / "base"
    assert _init(base, "--pretrain_operators", "+-") == 0
    shifted = tmp_path / "shifted"
    assert _init(shifted, "--operators", "+-", "--base_model", str(base / "base_model")) == 0
    first = json.loads(_lines(shifted / "data" / "train.jsonl")[0])
    a, b, c = map(int, re.fullmatch(r"What is (\d+)\+(\d+)-(\d+)\?", first["question"]).groups())
    assert first["solution"] == str(a + b - c)
    assert first["reasoning_trace"] == f"{a}+{b}={a + b}, {a + b}-{c}={a + b - c}"
    assert rlt_error(["toy", "init", "--output_dir", tmp_path / "x", "--operators", "+-"]).startswith(
        "operators '+-' ask what a base pretrained on '+' facts does not know")
    assert rlt_error(["toy", "init", "--output_dir", tmp_path / "x", "--operators", "+-", "--low", "10",
                      "--pretrain_operators", "+-"]).startswith(
        "operators '+-' on operands from 10 to 99 can go below zero")


def test_init_refuses_a_base_model_without_the_toy_tokenizer(tmp_path, bpe_tokenizer):
    from rlt.toy import build_causal_lm, save_model_and_tokenizer

    other = save_model_and_tokenizer(build_causal_lm(bpe_tokenizer, "tiny"), bpe_tokenizer, tmp_path / "other")
    assert _init(tmp_path / "world", "--base_model", str(other)) == 2
    with pytest.raises(UserError, match=r"base_model .*other does not have the toy char tokenizer"):
        _init(tmp_path / "world", "--base_model", str(other), "--debug")
    with pytest.raises(UserError, match=r"base_model .*missing is not a model folder"):
        _init(tmp_path / "world2", "--base_model", str(tmp_path / "missing"), "--debug")
    assert not (tmp_path / "world").exists() and not (tmp_path / "world2").exists()  # nothing written


@pytest.mark.parametrize("argv", [["toy"], ["toy", "build", "--output", "x"], ["toy", "--output", "x"]])
def test_a_missing_or_unknown_subcommand_is_a_usage_error(argv, capsys):
    assert rlt(argv) == 2
    assert "usage: rlt toy init" in capsys.readouterr().err


def test_init_requires_an_output(rlt_error):
    assert "--output_dir" in rlt_error(["toy", "init"])
