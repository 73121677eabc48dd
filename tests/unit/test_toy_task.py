"""rlt.toy.task and rlt.toy.world: the synthetic addition task, its graded explanations, the world folder."""

from __future__ import annotations

import json
import os
import random
import shutil
from collections import Counter

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from transformers import AutoModelForCausalLM, AutoTokenizer

from rlt.answers import answers_match, extract_answer
from rlt.data import load_examples
from rlt.formats import FormatConfig
from rlt.toy import build_causal_lm, build_char_tokenizer
from rlt.toy.task import (
    CORRUPTIONS,
    AdditionTask,
    answer_only_rows,
    corrupt,
    explanation_kind,
    gold_explanation,
    numbers_of,
    question,
    solution,
    teacher_warmup_rows,
)
from rlt.toy.world import ToyWorld, ToyWorldConfig, ToyWorldError, build_toy_world

HYPOTHESIS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Small operands too: zeros make repeated steps (5+0=5, 5+0=5) and sums that a wrong step could push below 0.
# Signed operands too (a subtraction, ``85-26``), never taking a running sum below zero.
OPERANDS = st.lists(st.one_of(st.integers(0, 3), st.integers(0, 999)), min_size=2, max_size=6)


@st.composite
def _signed(draw):
    numbers = draw(OPERANDS)
    total, signed = numbers[0], [numbers[0]]
    for n in numbers[1:]:
        n = -n if n <= total and draw(st.booleans()) else n
        total += n
        signed.append(n)
    return signed


NUMBERS = _signed()
SEEDS = st.integers(0, 2**32 - 1)


def _read(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


# Questions, solutions, gold explanations ------------------------------------------------------------


def test_question_solution_and_gold_explanation():
    assert question([47, 38, 26]) == "What is 47+38+26?"
    assert solution([47, 38, 26]) == "111"
    assert gold_explanation([47, 38, 26]) == "47+38=85, 85+26=111"
    assert gold_explanation([47, 38]) == "47+38=85"
    assert gold_explanation([1, 2, 3, 4]) == "1+2=3, 3+3=6, 6+4=10"


@given(NUMBERS)
def test_numbers_are_parsed_back_from_the_question(numbers):
    assert numbers_of(question(numbers)) == numbers


@pytest.mark.parametrize("text", ["What is 47?", "What is 47+38", "what is 1+2?", "What is 1+-2?"])
def test_numbers_of_rejects_other_text(text):
    with pytest.raises(ValueError, match="not a question of the toy task"):
        numbers_of(text)


@pytest.mark.parametrize("kwargs", [{"operands": 1}, {"low": -1}, {"low": 5, "high": 4}, {"operators": "*"},
                                    {"operators": "+-+"}, {"operators": "+-", "low": 10}, {"operators": "-"}])
def test_task_validates_its_fields(kwargs):
    with pytest.raises(ValueError):
        AdditionTask(**kwargs)


def test_a_subtraction_is_one_more_running_sum():
    assert question([47, 38, -26]) == "What is 47+38-26?" and solution([47, 38, -26]) == "59"
    assert gold_explanation([47, 38, -26]) == "47+38=85, 85-26=59"
    assert corrupt([47, 38, -26], "skipped_step", random.Random(0)) == "47+38-26=59"
    with pytest.raises(ValueError, match="no running sum below zero"):
        gold_explanation([5, -6, 9])


def test_operators_keep_the_questions_frame():
    plain, shifted = AdditionTask(seed=3).splits(50, 10), AdditionTask(seed=3, operators="+-").splits(50, 10)
    for added, subtracted in zip(plain[0] + plain[1], shifted[0] + shifted[1]):
        a, b, c = numbers_of(added.question)
        assert subtracted.question == f"What is {a}+{b}-{c}?" and subtracted.solution == str(a + b - c)
        assert subtracted.reasoning_trace == f"{a}+{b}={a + b}, {a + b}-{c}={a + b - c}"


# Splits ------------------------------------------------------------------------------------------


def test_splits_are_deterministic_distinct_and_disjoint():
    train, heldout = AdditionTask(seed=3).splits(500, 100)
    assert (train, heldout) == AdditionTask(seed=3).splits(500, 100)
    assert (len(train), len(heldout)) == (500, 100)
    train_q, heldout_q = {e.question for e in train}, {e.question for e in heldout}
    assert len(train_q) == 500 and len(heldout_q) == 100 and not train_q & heldout_q
    for example in train[:20]:
        numbers = numbers_of(example.question)
        assert len(numbers) == 3 and all(10 <= n <= 99 for n in numbers)
        assert example.solution == solution(numbers)
        assert example.reasoning_trace == gold_explanation(numbers)
    assert AdditionTask(seed=4).splits(500, 100) != (train, heldout)


def test_heldout_split_does_not_depend_on_the_training_size():
    task = AdditionTask(operands=2, low=0, high=30)
    assert task.splits(10, 50)[1] == task.splits(400, 50)[1]


def test_a_small_task_can_be_split_exhaustively():
    task = AdditionTask(operands=2, low=1, high=3)
    train, heldout = task.splits(6, 3)
    assert sorted(e.question for e in train + heldout) == sorted(
        question([a, b]) for a in (1, 2, 3) for b in (1, 2, 3))


def test_splits_larger_than_the_task_are_refused():
    with pytest.raises(ValueError, match=r"10 distinct questions, but 2 operands in \[1, 3\] give only 9"):
        AdditionTask(operands=2, low=1, high=3).splits(7, 3)


# Corruptions and the checker ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", CORRUPTIONS)
def test_corruptions_of_a_three_operand_question(kind):
    text = corrupt([47, 38, 26], kind, random.Random(0))
    expected = {
        "skipped_step": "47+38+26=111",
        "empty": "",
        "restated_answer": "The answer is 111.",
        "shuffled_steps": "85+26=111, 47+38=85",
        "unfinished": "47+38=85",
        "answer_first": "The answer is 111. 47+38=85, 85+26=111",
    }
    if kind in expected:
        assert text == expected[kind]
    elif kind == "filler":
        assert "47+38=85" in text and "85+26=111" in text and text != gold_explanation([47, 38, 26])
    else:  # one step off, the slip carried on to the end: each step starts from the previous result
        first, second = text.split(", ")
        slipped = int(first.split("=")[1])
        total = int(second.split("=")[1])
        assert first.startswith("47+38=") and second.startswith(f"{slipped}+26=")
        assert (slipped != 85) + (total != slipped + 26) == 1 and total != 111


@pytest.mark.parametrize("numbers", [[47, 38], [5, 0, 0], [0, 0, 0, 0], [0, 0]])
def test_degenerate_inputs_still_get_every_corruption(numbers):
    """One step (nothing to reorder or merge) and identical steps (5+0=5, 5+0=5) have special forms."""
    for kind in CORRUPTIONS:
        text = corrupt(numbers, kind, random.Random(1))
        assert text != gold_explanation(numbers) and explanation_kind(numbers, text) == kind
    assert corrupt([47, 38], "skipped_step", random.Random(0)) == "85"
    assert corrupt([47, 38], "shuffled_steps", random.Random(0)) == "85=47+38"
    assert corrupt([47, 38], "unfinished", random.Random(0)) == "47+38"


@HYPOTHESIS
@given(NUMBERS, st.sampled_from(CORRUPTIONS), SEEDS)
def test_every_corruption_differs_from_gold_and_is_recognised(numbers, kind, seed):
    text = corrupt(numbers, kind, random.Random(seed))
    assert text != gold_explanation(numbers)
    assert explanation_kind(numbers, text) == kind


@given(NUMBERS)
def test_gold_is_recognised_as_gold(numbers):
    assert explanation_kind(numbers, gold_explanation(numbers)) == "gold"


@pytest.mark.parametrize("text", ["47+38=86, 86+26=113", "47+38=86, 85+26=111", "85+26=111", "111 because math"])
def test_other_explanations_are_other(text):
    assert explanation_kind([47, 38, 26], text) == "other"


def test_unknown_corruption_is_refused():
    with pytest.raises(ValueError, match="unknown corruption 'typo'"):
        corrupt([1, 2], "typo", random.Random(0))


# Checking student answers ------------------------------------------------------------------------


def _right(text: str, solution: str, fmt: FormatConfig | None = None) -> bool:
    """How ``rlt evaluate --match exact`` checks a toy answer: rlt.answers, as for every task."""
    return answers_match(extract_answer(text, fmt), solution, "exact")


def test_toy_answers_are_checked_by_rlt_answers():
    assert _right("<|begin_of_solution|>111<|end_of_solution|>", "111")
    assert _right("<|begin_of_solution|>0111<|end_of_solution|>", "111")  # the integers, not the strings
    assert _right("<|begin_of_thought|>85+26=111<|end_of_thought|>\n\n<|begin_of_solution|> 111 <|end_of_solution|>",
                  "111")
    assert not _right("<|begin_of_solution|>112<|end_of_solution|>", "111")
    assert not _right("<|begin_of_solution|>1111<|end_of_solution|>", "111")
    assert not _right("111 or <|begin_of_solution|>110<|end_of_solution|>", "111")
    assert not _right("47+38=85, 85+26=111, so 111", "111")  # no solution section: no answer
    r1 = FormatConfig(tag_format="r1")
    assert _right("<thought>85+26=111</thought>\n\n<solution>111</solution>", "111", r1)
    assert not _right("<thought>85+26=111</thought>\n\n<solution>111</solution>", "111")


# Rows for training ---------------------------------------------------------------------------------


def test_teacher_warmup_rows_follow_the_mix_exactly():
    train, _ = AdditionTask().splits(200, 0)
    mix = {"gold": 0.4, "skipped_step": 0.45, "restated_answer": 0.15}
    rows = teacher_warmup_rows(train, mix, rng=7)
    assert rows == teacher_warmup_rows(train, mix, rng=random.Random(7))
    assert rows != teacher_warmup_rows(train, mix, rng=8)
    assert [r["question"] for r in rows] == [e.question for e in train]
    assert Counter(r["kind"] for r in rows) == {"gold": 80, "skipped_step": 90, "restated_answer": 30}
    for row in rows:
        assert explanation_kind(numbers_of(row["question"]), row["reasoning_trace"]) == row["kind"]
    for bad in ({"gold": 1, "typo": 1}, {"gold": -1, "empty": 2}, {"gold": 0}, {}):
        with pytest.raises(ValueError, match="mix"):
            teacher_warmup_rows(train, bad)


@given(st.dictionaries(st.sampled_from(("gold", *CORRUPTIONS)), st.floats(0.01, 10), min_size=1),
       st.integers(0, 300))
def test_warmup_kind_counts_sum_to_the_rows_and_round_each_share(mix, n):
    train, _ = AdditionTask().splits(n, 0)
    counts = Counter(r["kind"] for r in teacher_warmup_rows(train, mix, rng=0))
    assert sum(counts.values()) == n
    for kind, share in mix.items():
        assert abs(counts[kind] - n * share / sum(mix.values())) < 1


def test_answer_only_rows_have_an_empty_trace():
    train, _ = AdditionTask().splits(5, 0)
    rows = answer_only_rows(train)
    assert rows == [{"question": e.question, "solution": e.solution, "reasoning_trace": ""} for e in train]


# The world folder ----------------------------------------------------------------------------------


def test_world_files(toy_world: ToyWorld):
    train = load_examples(toy_world.train).items
    heldout = load_examples(toy_world.heldout).items
    assert (len(train), len(heldout)) == (400, 100)
    assert not {e.question for e in train} & {e.question for e in heldout}
    assert load_examples(toy_world.teacher_warmup).items[0].question == train[0].question
    assert all(e.reasoning_trace == "" for e in load_examples(toy_world.answer_only).items)
    by_kind = _read(toy_world.explanations_by_kind)
    assert len(by_kind) == 100 * (1 + len(CORRUPTIONS))
    assert {r["question"] for r in by_kind} == {e.question for e in heldout}
    for row in by_kind:
        assert explanation_kind(numbers_of(row["question"]), row["explanation"]) == row["kind"]
    manifest = json.loads(toy_world.manifest.read_text())
    assert manifest["config"] == {
        "operands": 3, "low": 50, "high": 99, "operators": "+", "n_train": 400, "n_heldout": 100,
        "model_size": "tiny", "pretrain_max_steps": 0, "pretrain_target_fact_accuracy": 0.98,
        "pretrain_learning_rate": 5e-3, "pretrain_operators": "+", "base_model": None, "seed": 0}
    assert manifest["pretraining"]["steps"] == 0 and manifest["pretraining"]["fact_accuracy"] < 0.05  # untrained
    assert all((toy_world.root / path).exists() for path in manifest["files"].values())


def test_same_seed_same_world(toy_world: ToyWorld, tmp_path):
    again = build_toy_world(tmp_path / "again", toy_world.config)
    for name in ("train", "heldout", "teacher_warmup", "answer_only", "explanations_by_kind"):
        assert getattr(again, name).read_bytes() == getattr(toy_world, name).read_bytes(), name
    first = AutoModelForCausalLM.from_pretrained(toy_world.base_model).state_dict()
    second = AutoModelForCausalLM.from_pretrained(again.base_model).state_dict()
    assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)


def test_another_seed_another_world(toy_world: ToyWorld, tmp_path):
    config = ToyWorldConfig(n_train=400, n_heldout=100, pretrain_max_steps=0, seed=1)
    other = build_toy_world(tmp_path / "other", config)
    assert other.train.read_bytes() != toy_world.train.read_bytes()
    first = AutoModelForCausalLM.from_pretrained(toy_world.base_model).state_dict()
    second = AutoModelForCausalLM.from_pretrained(other.base_model).state_dict()
    assert not torch.equal(first["model.embed_tokens.weight"], second["model.embed_tokens.weight"])


def test_base_model_loads_offline_like_a_hub_checkpoint(toy_world: ToyWorld, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    original = build_char_tokenizer()
    tokenizer = AutoTokenizer.from_pretrained(toy_world.base_model)
    fmt = FormatConfig()
    numbers = [47, 38, 26]
    texts = [question(numbers), fmt.teacher_answer(solution(numbers), gold_explanation(numbers)),
             fmt.student_answer("ok so, 47+38=85\n\n85+26=111", "111"),
             tokenizer.apply_chat_template(fmt.teacher_messages(question(numbers), "111"), tokenize=False,
                                           continue_final_message=True)]
    for text in texts:
        ids = tokenizer.encode(text, add_special_tokens=False)
        assert ids == original.encode(text, add_special_tokens=False)
        assert tokenizer.decode(ids) == text
    assert tokenizer.chat_template == original.chat_template
    assert (tokenizer.eos_token, tokenizer.pad_token) == (original.eos_token, original.pad_token)

    model = AutoModelForCausalLM.from_pretrained(toy_world.base_model)
    expected = build_causal_lm(original, "tiny", seed=0).state_dict()
    loaded = model.state_dict()
    assert all(torch.equal(loaded[k], expected[k]) for k in expected)
    with torch.no_grad():
        logits = model(torch.tensor([tokenizer.encode(texts[1])])).logits
    assert logits.shape[-1] >= len(tokenizer) and torch.isfinite(logits).all()


def test_world_config_is_validated():
    with pytest.raises(ValueError, match="model_size"):
        ToyWorldConfig(model_size="huge")
    with pytest.raises(ValueError, match="operands"):
        ToyWorldConfig(operands=1)
    with pytest.raises(ValueError, match="pretrain_max_steps"):
        ToyWorldConfig(pretrain_max_steps=-1)


def test_world_is_reused_or_refused(toy_world: ToyWorld, tmp_path):
    assert build_toy_world(toy_world.root, toy_world.config) == toy_world
    with pytest.raises(ToyWorldError, match=r"another config \(n_train: 400 there, 401 asked\)"):
        build_toy_world(toy_world.root, ToyWorldConfig(n_train=401, n_heldout=100, pretrain_max_steps=0))
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ToyWorldError, match=r"not empty and holds no toy world \(notes.txt\)"):
        build_toy_world(tmp_path, ToyWorldConfig(n_train=10, n_heldout=10))
    with pytest.raises(ValueError, match="distinct questions"):
        build_toy_world(tmp_path / "too_big", ToyWorldConfig(operands=2, low=0, high=2, n_train=8, n_heldout=2))
    assert not (tmp_path / "too_big").exists()


def test_a_world_drawn_with_another_warmup_mix_is_refused(toy_world: ToyWorld, tmp_path):
    older = tmp_path / "older"
    shutil.copytree(toy_world.root, older)
    manifest = json.loads((older / "world.json").read_text())
    (older / "world.json").write_text(json.dumps({**manifest, "warmup_mix": {"gold": 0.5, "filler": 0.5}}))
    with pytest.raises(ToyWorldError, match="another mix"):
        build_toy_world(older, toy_world.config)


def test_an_unfinished_build_is_completed(tmp_path):
    config = ToyWorldConfig(n_train=20, n_heldout=10, pretrain_max_steps=0)
    world = build_toy_world(tmp_path, config)
    world.manifest.unlink()
    world.heldout.unlink()
    rebuilt = build_toy_world(tmp_path, config)
    assert rebuilt.is_complete() and len(_read(rebuilt.heldout)) == 10


def test_a_slip_before_a_subtraction_keeps_every_sum_readable():
    for seed in range(50):  # [5, 3, -8] ends at 0: a slip downwards would take the last sum below zero
        text = corrupt([5, 3, -8], "wrong_intermediate", random.Random(seed))
        assert explanation_kind([5, 3, -8], text) == "wrong_intermediate", text
