"""The toy base model's pretraining on addition facts: the documents, the training, the fact check."""

from __future__ import annotations

import re

import pytest
import torch

from rlt.toy import build_causal_lm
from rlt.toy.pretraining import FACT_SEPARATOR, PretrainingConfig, fact_accuracy, fact_documents, pretrain
from rlt.toy.task import AdditionTask

TASK = AdditionTask(operands=3, low=10, high=99)


def test_fact_documents_hold_true_facts_of_the_additions_explanations_make():
    config = PretrainingConfig(facts_per_document=5)
    documents = fact_documents(TASK, 200, config)
    assert len(documents) == 200
    for document in documents:
        facts = document.split(FACT_SEPARATOR)
        assert len(facts) == 5
        for fact in facts:
            a, b, total = map(int, re.fullmatch(r"(\d+)\+(\d+)=(\d+)", fact).groups())
            assert a + b == total and 10 <= a <= 198 and 10 <= b <= 99
    assert fact_documents(TASK, 200, config) == documents
    assert fact_documents(TASK, 200, PretrainingConfig(facts_per_document=5, seed=1)) != documents


def test_subtraction_facts_are_half_of_a_plus_minus_pretraining_and_never_below_zero():
    facts = [fact for document in fact_documents(TASK, 400, PretrainingConfig(operators="+-"))
             for fact in document.split(FACT_SEPARATOR)]
    subtractions = 0
    for fact in facts:
        a, sign, b, value = re.fullmatch(r"(\d+)([+-])(\d+)=(\d+)", fact).groups()
        a, b, value = int(a), int(b), int(value)
        assert value == (a + b if sign == "+" else a - b) >= 0 and 10 <= a <= 198 and b <= 99
        subtractions += sign == "-"
    assert 0.45 < subtractions / len(facts) < 0.55


def _mean_loss(model, tokenizer, documents) -> float:
    batch = tokenizer(documents, return_tensors="pt", padding=True)
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    with torch.no_grad():
        return model(**batch, labels=labels).loss.item()


def test_pretraining_lowers_the_loss_on_fresh_facts(char_tokenizer):
    model = build_causal_lm(char_tokenizer, "tiny", seed=0)
    held_out = fact_documents(TASK, 32, PretrainingConfig(seed=99))
    before = _mean_loss(model, char_tokenizer, held_out)
    result = pretrain(model, char_tokenizer, TASK, PretrainingConfig(max_steps=40, batch_size=16, documents=640))
    assert result.steps == 40 and 0.0 <= result.fact_accuracy < 0.98 and not model.training
    assert _mean_loss(model, char_tokenizer, held_out) < 0.6 * before


def test_pretraining_decays_and_stops_once_the_facts_are_known(char_tokenizer):
    """A target of 0% is met at the first check (step 5); the learning rate then decays to zero in 3 steps."""
    model = build_causal_lm(char_tokenizer, "tiny", seed=0)
    config = PretrainingConfig(max_steps=40, check_every=5, decay_steps=3, target_fact_accuracy=0.0, batch_size=8,
                               documents=64)
    assert pretrain(model, char_tokenizer, TASK, config).steps == 8


class _Calculator(torch.nn.Module):
    """Completes ``a+b=`` prompts with ``a+b+error`` (a stand-in model with known accuracy)."""

    def __init__(self, tokenizer, error: int = 0):
        super().__init__()
        self.tokenizer, self.error = tokenizer, error
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def generate(self, input_ids, attention_mask, **_):
        rows = []
        for ids in input_ids.tolist():
            prompt = self.tokenizer.decode(ids, skip_special_tokens=True)
            a, sign, b = re.fullmatch(r"(\d+)([+-])(\d+)=", prompt).groups()
            value = int(a) + int(b) if sign == "+" else int(a) - int(b)
            rows.append(ids + self.tokenizer.encode(f"{value + self.error},", add_special_tokens=False))
        width = max(map(len, rows))
        return torch.tensor([row + [self.tokenizer.pad_token_id] * (width - len(row)) for row in rows])


@pytest.mark.parametrize("operators", ["+", "+-"])
@pytest.mark.parametrize(("error", "expected"), [(0, 1.0), (1, 0.0)])
def test_fact_accuracy_counts_right_values(char_tokenizer, error, expected, operators):
    calculator = _Calculator(char_tokenizer, error)
    assert fact_accuracy(calculator, char_tokenizer, TASK, count=50, operators=operators) == expected


def test_an_untrained_model_knows_no_facts(char_tokenizer):
    assert fact_accuracy(build_causal_lm(char_tokenizer, "tiny", seed=0), char_tokenizer, TASK, count=64) < 0.05
