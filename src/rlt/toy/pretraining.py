"""Pretraining the toy world's base model on addition facts: the toy's stand-in for a pretrained LM.

The paper's teacher and students all start from Qwen2.5-7B-Instruct, a model that already knows
arithmetic: fine-tuning teaches them to explain and to reason in steps, not to add. A randomly
initialised tiny model must learn two-digit addition first. Measured on the demo's task, students
trained from scratch needed ~1500 SFT steps, and whether they learned to add within that budget was
seed luck (gold-explanation students at 0.36 to 0.99 held-out accuracy over three seeds), which
drowned the teacher's effect. So the world's base model is first pretrained, once, on documents of
addition facts (``47+38=85, 112+26=138, ...``): each fact is an addition of the kind a step of the
task's gold explanations makes (a running sum plus an operand), never a question's whole total, so
what fine-tuning teaches (reading the question, chaining the steps, or answering without them) is
still to be learned by every student.

The loop is TRL's ``SFTTrainer`` on plain text (language modelling on every token), like the rest of
rlt's training.
"""

from __future__ import annotations

import logging
import random
import tempfile
from dataclasses import dataclass

import torch
from datasets import Dataset
from transformers import PreTrainedModel, PreTrainedTokenizerBase
from trl import SFTConfig, SFTTrainer

from rlt.toy.task import AdditionTask

logger = logging.getLogger(__name__)

FACT_SEPARATOR = ", "


@dataclass(frozen=True)
class PretrainingConfig:
    """How long and how fast the base model is pretrained (the world's ``pretrain_*`` fields)."""

    steps: int = 1200
    learning_rate: float = 5e-3
    batch_size: int = 64
    facts_per_document: int = 6
    seed: int = 0


def random_fact(task: AdditionTask, rng: random.Random) -> tuple[int, int]:
    """The operands of one addition a gold explanation of ``task`` may make: a running sum (anything
    from the smallest operand to the largest sum short of the last addition) plus one operand."""
    return rng.randint(task.low, (task.operands - 1) * task.high), rng.randint(task.low, task.high)


def fact_documents(task: AdditionTask, count: int, config: PretrainingConfig) -> list[str]:
    """``count`` documents of ``config.facts_per_document`` independent facts: ``47+38=85, 112+26=138``."""
    rng = random.Random(f"rlt-toy-pretraining:{config.seed}")
    documents = []
    for _ in range(count):
        facts = (random_fact(task, rng) for _ in range(config.facts_per_document))
        documents.append(FACT_SEPARATOR.join(f"{a}+{b}={a + b}" for a, b in facts))
    return documents


def pretrain(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, task: AdditionTask, config: PretrainingConfig
) -> PreTrainedModel:
    """``model`` trained for ``config.steps`` steps on fresh fact documents (one pass, none repeated)."""
    documents = fact_documents(task, config.steps * config.batch_size, config)
    with tempfile.TemporaryDirectory(prefix="rlt-pretraining-") as scratch:
        training = SFTConfig(
            output_dir=scratch, max_steps=config.steps, per_device_train_batch_size=config.batch_size,
            learning_rate=config.learning_rate, lr_scheduler_type="cosine", warmup_steps=50, weight_decay=0.1,
            max_length=256, dataset_text_field="text", bf16=False, gradient_checkpointing=False,
            save_strategy="no", logging_steps=100, report_to="none", seed=config.seed,
        )
        trainer = SFTTrainer(model=model, args=training, processing_class=tokenizer,
                             train_dataset=Dataset.from_list([{"text": d} for d in documents]))
        trainer.train()
    return trainer.model.eval()


@torch.no_grad()
def fact_accuracy(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, task: AdditionTask, count: int = 256, seed: int = 0
) -> float:
    """Share of ``count`` fresh facts (``a+b=``) the model completes greedily with the right sum."""
    rng = random.Random(f"rlt-toy-fact-check:{seed}")
    facts = [random_fact(task, rng) for _ in range(count)]
    batch = tokenizer([f"{a}+{b}=" for a, b in facts], return_tensors="pt", padding=True, padding_side="left")
    device = next(model.parameters()).device
    output = model.generate(**batch.to(device), max_new_tokens=len(str(task.operands * task.high)) + 1,
                            do_sample=False, pad_token_id=tokenizer.pad_token_id)
    completions = tokenizer.batch_decode(output[:, batch["input_ids"].shape[1]:], skip_special_tokens=True)
    return sum(_leading_integer(text) == a + b for text, (a, b) in zip(completions, facts)) / count


def _leading_integer(text: str) -> int | None:
    digits = ""
    for char in text:
        if not char.isdigit():
            break
        digits += char
    return int(digits) if digits else None


__all__ = ["PretrainingConfig", "fact_accuracy", "fact_documents", "pretrain", "random_fact"]
