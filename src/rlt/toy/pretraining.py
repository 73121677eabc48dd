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
from transformers import PreTrainedModel, PreTrainedTokenizerBase, TrainerCallback
from trl import SFTConfig, SFTTrainer

from rlt.toy.task import AdditionTask

logger = logging.getLogger(__name__)

FACT_SEPARATOR = ", "


@dataclass(frozen=True)
class PretrainingConfig:
    """How the base model is pretrained (the world's ``pretrain_*`` fields).

    Training stops as soon as the model completes ``target_fact_accuracy`` of fresh facts (checked every
    ``check_every`` steps), or after ``max_steps``. When a tiny model learns to add is seed luck: the loss
    drops suddenly somewhere between ~600 and 1200+ steps (seed 0, 1200 steps at lr 5e-3: 99.7% of facts
    in a plain PyTorch loop, 16% with the Trainer's data order; seed 1: 63%). A fixed budget either
    wastes steps or leaves some seeds' base models unable to add, so the budget is a ceiling and the
    learning rate is constant.
    """

    max_steps: int = 3000
    target_fact_accuracy: float = 0.98
    check_every: int = 100
    learning_rate: float = 5e-3
    batch_size: int = 64
    facts_per_document: int = 6
    documents: int = 32768  # repeated when the steps need more (at most one pass when they need fewer)
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


class _StopWhenFactsAreKnown(TrainerCallback):
    """Checks the fact accuracy every ``check_every`` steps and stops training once it reaches the target."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, task: AdditionTask, config: PretrainingConfig):
        self.tokenizer, self.task, self.config = tokenizer, task, config
        self.accuracy = 0.0

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step % self.config.check_every == 0 or state.global_step == state.max_steps:
            self.accuracy = fact_accuracy(model, self.tokenizer, self.task, seed=self.config.seed)
            logger.info("pretraining step %d: completes %.1f%% of fresh facts", state.global_step, 100 * self.accuracy)
            control.should_training_stop = self.accuracy >= self.config.target_fact_accuracy
        return control


@dataclass(frozen=True)
class PretrainingResult:
    steps: int
    fact_accuracy: float


def pretrain(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, task: AdditionTask, config: PretrainingConfig
) -> PretrainingResult:
    """Train ``model`` in place on fact documents until it knows its facts (see :class:`PretrainingConfig`)."""
    documents = fact_documents(task, min(config.documents, config.max_steps * config.batch_size), config)
    stopper = _StopWhenFactsAreKnown(tokenizer, task, config)
    with tempfile.TemporaryDirectory(prefix="rlt-pretraining-") as scratch:
        training = SFTConfig(
            output_dir=scratch, max_steps=config.max_steps, per_device_train_batch_size=config.batch_size,
            learning_rate=config.learning_rate, lr_scheduler_type="constant_with_warmup", warmup_steps=50,
            weight_decay=0.1, max_length=256, dataset_text_field="text", bf16=False, gradient_checkpointing=False,
            save_strategy="no", logging_steps=config.check_every, report_to="none", seed=config.seed,
        )
        trainer = SFTTrainer(model=model, args=training, processing_class=tokenizer, callbacks=[stopper],
                             train_dataset=Dataset.from_list([{"text": d} for d in documents]))
        trainer.train()
    model.eval()
    if stopper.accuracy < config.target_fact_accuracy:
        logger.warning("the base model completes only %.1f%% of fresh facts after %d pretraining steps (target "
                       "%.0f%%): students will struggle to add; raise pretrain_max_steps",
                       100 * stopper.accuracy, trainer.state.global_step, 100 * config.target_fact_accuracy)
    return PretrainingResult(trainer.state.global_step, stopper.accuracy)


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


__all__ = ["PretrainingConfig", "PretrainingResult", "fact_accuracy", "fact_documents", "pretrain", "random_fact"]
