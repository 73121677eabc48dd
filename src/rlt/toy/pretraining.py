"""Pretraining the toy world's base model on addition facts: the toy's stand-in for a pretrained LM.

The paper's teacher and students all start from Qwen2.5-7B-Instruct, a model that already knows
arithmetic: fine-tuning teaches them to explain and to reason in steps, not to add. A randomly
initialised tiny model must learn two-digit addition first. Measured on the demo's task (then with
operands 10-99), students trained from scratch needed ~1500 SFT steps, and whether they learned to add
within that budget was seed luck (gold-explanation students at 0.36 to 0.99 held-out accuracy over three
seeds), which drowned the teacher's effect. So the world's base model is first pretrained, once, on
documents of addition facts (``147+58=205, 112+96=208, ...``): each fact is an addition of the kind a
step of the task's gold explanations makes (a running sum plus an operand), never a question's whole
total, so what fine-tuning teaches (reading the question, chaining the steps, or answering without them)
is still to be learned by every student. With ``operators="+-"`` half the facts are subtractions
(``205-58=147``): a base that knows both, for a transfer task that subtracts in the same frame.

The loop is TRL's ``SFTTrainer`` on plain text (language modelling on every token), like the rest of
rlt's training.
"""

from __future__ import annotations

import logging
import random
import re
import tempfile
from dataclasses import dataclass

import torch
from datasets import Dataset
from transformers import PreTrainedModel, PreTrainedTokenizerBase, TrainerCallback
from trl import SFTConfig, SFTTrainer

from rlt.toy.task import AdditionTask, expression, step

logger = logging.getLogger(__name__)

FACT_SEPARATOR = ", "
WARMUP_STEPS = 50


@dataclass(frozen=True)
class PretrainingConfig:
    """How the base model is pretrained (the world's ``pretrain_*`` fields).

    The learning rate is warmup-stable-decay: constant until the model completes ``target_fact_accuracy``
    of fresh facts (checked every ``check_every`` steps), then decayed linearly to zero over
    ``decay_steps`` (from ``max_steps - decay_steps`` on at the latest). When a tiny model learns to add is
    seed luck: the loss drops suddenly somewhere between ~600 and 1400 steps (1200 steps of cosine decay
    at lr 5e-3 taught seed 0 99.7% of facts in a plain PyTorch loop, 16% in the Trainer's data order), so
    a fixed schedule either wastes steps or leaves some seeds unable to add. The decay matters: students
    fine-tuned from a model stopped at full learning rate once it knew 98% of facts lost their arithmetic
    (demo seed 0: gold student 0.04 held-out; with the decay, 0.91 to 1.0 over seeds 0-2).
    """

    max_steps: int = 3000
    target_fact_accuracy: float = 0.98
    check_every: int = 100
    decay_steps: int = 200
    learning_rate: float = 5e-3
    batch_size: int = 64
    facts_per_document: int = 6
    documents: int = 32768  # repeated when the steps need more (at most one pass when they need fewer)
    seed: int = 0
    operators: str = "+"


def random_fact(task: AdditionTask, rng: random.Random, operators: str = "+") -> tuple[int, int]:
    """The operands of one step a gold explanation of ``task`` may make: a running sum (anything from the
    smallest operand to the largest sum short of the last addition) and one signed operand, added or, when
    ``operators`` has ``-`` and it falls so, subtracted (never more than the running sum)."""
    total, operand = rng.randint(task.low, (task.operands - 1) * task.high), rng.randint(task.low, task.high)
    if len(operators) > 1 and rng.choice(operators) == "-":  # "+" alone draws as it always has
        return total, -min(operand, total)
    return total, operand


def fact_documents(task: AdditionTask, count: int, config: PretrainingConfig) -> list[str]:
    """``count`` documents of ``config.facts_per_document`` independent facts: ``47+38=85, 112-26=86``."""
    rng = random.Random(f"rlt-toy-pretraining:{config.seed}")
    documents = []
    for _ in range(count):
        facts = (random_fact(task, rng, config.operators) for _ in range(config.facts_per_document))
        documents.append(FACT_SEPARATOR.join(step([a, b], a + b) for a, b in facts))
    return documents


class _DecayOnceFactsAreKnown(TrainerCallback):
    """The warmup-stable-decay schedule of :class:`PretrainingConfig`: a ``LambdaLR`` factor whose decay
    phase starts when this callback finds the facts known, and which stops training when it ends."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, task: AdditionTask, config: PretrainingConfig):
        self.tokenizer, self.task, self.config = tokenizer, task, config
        self.decay_from = max(0, config.max_steps - config.decay_steps)
        self.accuracy = 0.0

    def factor(self, step: int) -> float:
        warmup = min(1.0, (step + 1) / WARMUP_STEPS)
        return warmup * min(1.0, max(0.0, 1 - (step - self.decay_from) / self.config.decay_steps))

    def on_step_end(self, args, state, control, model=None, **kwargs):
        step = state.global_step
        decaying = step > self.decay_from
        done = step >= self.decay_from + self.config.decay_steps
        if (step % self.config.check_every == 0 and not decaying) or done:
            self.accuracy = fact_accuracy(model, self.tokenizer, self.task, seed=self.config.seed,
                                          operators=self.config.operators)
            logger.info("pretraining step %d: completes %.1f%% of fresh facts", step, 100 * self.accuracy)
            if not decaying and self.accuracy >= self.config.target_fact_accuracy:
                self.decay_from = step
                logger.info("target reached: the learning rate decays to zero in %d steps", self.config.decay_steps)
        control.should_training_stop = step >= self.decay_from + self.config.decay_steps
        return control


@dataclass(frozen=True)
class PretrainingResult:
    """How many steps the pretraining took, and the share of fresh facts the model then completes."""

    steps: int
    fact_accuracy: float


def pretrain(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, task: AdditionTask, config: PretrainingConfig
) -> PretrainingResult:
    """Train ``model`` in place on fact documents until it knows its facts (see :class:`PretrainingConfig`)."""
    documents = fact_documents(task, min(config.documents, config.max_steps * config.batch_size), config)
    start = _document_start(tokenizer)
    schedule = _DecayOnceFactsAreKnown(tokenizer, task, config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=0.1)
    with tempfile.TemporaryDirectory(prefix="rlt-pretraining-") as scratch:
        training = SFTConfig(
            output_dir=scratch, max_steps=config.max_steps, per_device_train_batch_size=config.batch_size,
            learning_rate=config.learning_rate, max_length=256, dataset_text_field="text", bf16=False,
            activation_checkpointing=False, save_strategy="no", logging_steps=config.check_every, report_to="none",
            seed=config.seed, dataloader_pin_memory=torch.cuda.is_available(),
        )
        trainer = SFTTrainer(model=model, args=training, processing_class=tokenizer, callbacks=[schedule],
                             optimizers=(optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, schedule.factor)),
                             train_dataset=Dataset.from_list([{"text": start + d} for d in documents]))
        trainer.train()
    model.eval()
    if schedule.accuracy < config.target_fact_accuracy:
        logger.warning("the base model completes only %.1f%% of fresh facts after %d pretraining steps (target "
                       "%.0f%%): students will struggle to add; raise pretrain_max_steps",
                       100 * schedule.accuracy, trainer.state.global_step, 100 * config.target_fact_accuracy)
    return PretrainingResult(trainer.state.global_step, schedule.accuracy)


def _document_start(tokenizer: PreTrainedTokenizerBase) -> str:
    """The token a document starts with: the BOS token, or (Qwen2 has none) ``<|endoftext|>``, the pad token,
    which separates documents in Qwen's pretraining. Without it a fact opens each document and serves as
    the attention sink; measured on the demo's seed 0, students fine-tuned from such a base (100% of
    facts known) wrote sums off by a few (gold student 0.09 held-out), against 0.91 with a start token."""
    return tokenizer.bos_token or tokenizer.pad_token


@torch.no_grad()
def fact_accuracy(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, task: AdditionTask, count: int = 256, seed: int = 0,
    operators: str = "+",
) -> float:
    """Share of ``count`` fresh facts (``a+b=``, ``a-b=``) the model completes greedily with the right value."""
    rng = random.Random(f"rlt-toy-fact-check:{seed}")
    facts = [random_fact(task, rng, operators) for _ in range(count)]
    prompts = [f"{_document_start(tokenizer)}{expression([a, b])}=" for a, b in facts]
    batch = tokenizer(prompts, return_tensors="pt", padding=True, padding_side="left")
    device = next(model.parameters()).device
    output = model.generate(**batch.to(device), max_new_tokens=len(str(task.operands * task.high)) + 1,
                            do_sample=False, pad_token_id=tokenizer.pad_token_id)
    completions = tokenizer.batch_decode(output[:, batch["input_ids"].shape[1]:], skip_special_tokens=True)
    return sum(_leading_integer(text) == a + b for text, (a, b) in zip(completions, facts)) / count


def _leading_integer(text: str) -> int | None:
    match = re.match(r"\d+", text)
    return int(match.group()) if match else None


__all__ = ["PretrainingConfig", "PretrainingResult", "fact_accuracy", "fact_documents", "pretrain", "random_fact"]
