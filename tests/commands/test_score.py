"""`rlt score` end to end on tiny local models: its contract, best-of-k, resume, errors."""

from __future__ import annotations

import json
import math

import pytest

from rlt.cli import main as rlt
from rlt.data import DataError
from rlt.errors import UserError
from rlt.reward import RewardTerms

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


def _read(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def _score(model_dirs, inp, out, *extra):
    teacher, student = model_dirs
    return rlt(["score", "--teacher", str(teacher), "--student", str(student),
                "--dataset", str(inp), "--output_dir", str(out), *extra])


def test_every_row_keeps_its_fields_and_gains_the_terms(model_dirs, tmp_path):
    out = tmp_path / "scored"
    assert _score(model_dirs, _write(tmp_path / "in.jsonl", ROWS), out) == 0
    rows = _read(out / "scored.jsonl")
    assert [r["id"] for r in rows] == ["a", "b", "c"]
    for row, original in zip(rows, ROWS):
        assert {k: row[k] for k in original} == original
        assert TERMS <= set(row)
    assert math.isfinite(rows[0]["reward"]) and isinstance(rows[0]["r_ss"], float)
    assert len(rows[1]["reward"]) == 3 and rows[1]["explanation_tokens"][1] == 0
    assert not (out / "scored.partial.jsonl").exists()
    info = json.loads((out / "rlt_run.json").read_text())
    assert info["config"]["reward"]["kl_mean_coef"] == 3.0 and "transformers" in info["versions"]


def test_keep_best_writes_one_row_per_question(model_dirs, tmp_path):
    out = tmp_path / "best"
    _score(model_dirs, _write(tmp_path / "in.jsonl", ROWS), out, "--keep_best", "true")
    rows = _read(out / "scored.jsonl")
    assert len(rows) == 2
    by_question = {r["question"]: r for r in rows}
    two_plus_two = by_question["What is 2+2?"]
    assert two_plus_two["candidates"] == 3 and "explanations" not in two_plus_two
    assert two_plus_two["reward"] == max(two_plus_two["candidate_rewards"])
    assert two_plus_two["explanation"] == ROWS[1]["explanations"][two_plus_two["candidate_rewards"].index(
        two_plus_two["reward"])]
    assert by_question["What is 12+30?"]["candidates"] == 2


def test_a_killed_run_resumes_without_rescoring(model_dirs, tmp_path):
    inp, out = _write(tmp_path / "in.jsonl", ROWS[:2]), tmp_path / "out"
    _score(model_dirs, inp, out)
    first = _read(out / "scored.jsonl")[0]
    # A run killed while scoring: row 1 is in the partial file (marked), row 2 was being written.
    marked = {"key": "1:None", "terms": {**{k: first[k] for k in TERMS}, "reward": 123.0}}
    (out / "scored.partial.jsonl").write_text(
        json.dumps(_fingerprint_header(model_dirs, inp, out)) + "\n" + json.dumps(marked) + '\n{"key": "2:0", "ter'
    )
    # Batch sizes and the LM-head chunk change speed, not scores: the partial file is still used.
    _score(model_dirs, inp, out, "--batch_size", "1", "--logit_chunk_size", "7")
    rows = _read(out / "scored.jsonl")
    assert rows[0]["reward"] == 123.0  # taken from the partial file, not recomputed
    assert len(rows[1]["reward"]) == 3 and all(math.isfinite(r) for r in rows[1]["reward"])


def _fingerprint_header(model_dirs, inp, out):
    from rlt.arguments import DataArguments, InferenceArguments
    from rlt.commands.score import ScoreArguments, _fingerprint
    from rlt.formats import FormatConfig
    from rlt.reward import RewardConfig

    args = ScoreArguments(teacher=str(model_dirs[0]), student=str(model_dirs[1]), output_dir=str(out))
    return {"fingerprint": _fingerprint(args, DataArguments(dataset=str(inp)), InferenceArguments(), RewardConfig(),
                                        FormatConfig())}


def test_partial_scores_from_other_settings_are_refused(model_dirs, tmp_path):
    inp, out = _write(tmp_path / "in.jsonl", ROWS[:1]), tmp_path / "out"
    out.mkdir()
    (out / "scored.partial.jsonl").write_text(json.dumps({"fingerprint": "another"}) + "\n")
    with pytest.raises(UserError, match="delete it"):
        _score(model_dirs, inp, out, "--debug")


def test_prompts_and_coefficients_come_from_yaml_and_flags(model_dirs, tmp_path):
    inp = _write(tmp_path / "in.jsonl", ROWS[:1])
    _score(model_dirs, inp, tmp_path / "default")
    config = tmp_path / "config.yaml"
    config.write_text("student_system_prompt: Think first.\nkl_mean_coef: 0.0\nkl_max_coef: 0.0\n")
    _score(model_dirs, inp, tmp_path / "custom", "--config", str(config),
           "--teacher_system_prompt", "Explain.")
    default, custom = _read(tmp_path / "default" / "scored.jsonl")[0], _read(tmp_path / "custom" / "scored.jsonl")[0]
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
    with pytest.raises(DataError, match=r"in.jsonl row 2: field 'explanation'"):
        _score(model_dirs, inp, tmp_path / "o.jsonl", "--debug")


def test_the_old_flags_still_work_with_a_warning(model_dirs, tmp_path, caplog):
    inp = _write(tmp_path / "in.jsonl", ROWS[:1])
    with caplog.at_level("WARNING"):
        assert rlt(["score", "--teacher", str(model_dirs[0]), "--student", str(model_dirs[1]), "--input", str(inp),
                    "--output", str(tmp_path / "old.jsonl")]) == 0
    assert "--input is deprecated" in caplog.text and "--output is deprecated" in caplog.text
    assert len(_read(tmp_path / "old.jsonl")) == 1 and (tmp_path / "rlt_run.json").exists()
