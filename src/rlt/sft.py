"""Supervised fine-tuning with TRL's ``SFTTrainer``: the shared core of ``teacher-sft`` and ``student-sft``.

The recipes build their records (:mod:`rlt.records`: token ids with a completion mask) and hand them
here; this module owns what both need: the trainer, resuming from the last checkpoint, saving, and
the run info.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from datasets import Dataset
from transformers import PreTrainedTokenizerBase
from transformers.trainer import TRAINER_STATE_NAME
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR
from trl import SFTConfig, SFTTrainer

from rlt.data import Example, load_examples
from rlt.errors import UserError
from rlt.formats import TAG_STYLES, FormatConfig
from rlt.modeling import model_init_kwargs
from rlt.run_info import write_run_info

logger = logging.getLogger(__name__)

# The records carry their own completion mask: the loss is on the completion unless a run says otherwise.
SFT_DEFAULTS = {"completion_only_loss": True}


@dataclass
class SFTArguments:
    """The options of `rlt teacher-sft` and `rlt student-sft` beside TRL's SFTConfig."""

    model: str = field(metadata={"help": "Base model to train: a local folder or a Hugging Face name."})
    dataset: str = field(metadata={"help": "Rows with question, solution and reasoning trace (any rlt format)."})
    split: str | None = field(default=None, metadata={"help": "Dataset split (default: the only one / train)."})
    limit: int | None = field(default=None, metadata={"help": "Use only the first N examples."})
    on_error: Literal["raise", "skip"] = field(default="raise", metadata={"help": "Bad rows: raise or skip."})
    resume: bool = field(default=False, metadata={"help": "Continue from the last checkpoint in output_dir."})


def check_training_options(training: SFTConfig) -> None:
    """Options that cannot apply to rlt's pre-tokenised records (TRL would fail on them later)."""
    if training.assistant_only_loss:
        raise UserError("assistant_only_loss: rlt builds the records' token ids itself, with the loss on the "
                        "answer already (completion_only_loss); leave assistant_only_loss off")


def load_sft_examples(args: SFTArguments, fmt: FormatConfig) -> list[Example]:
    """The dataset's examples; a row without a reasoning trace is a bad row (``on_error`` decides)."""
    loaded = load_examples(args.dataset, args.split, on_error=args.on_error, limit=args.limit,
                           tags=TAG_STYLES[fmt.tag_format], require_trace=True)
    logger.info("%s: %s", args.dataset, loaded.summary())
    return loaded.examples


def last_checkpoint(output_dir: str) -> str | None:
    """The newest complete ``checkpoint-N`` folder of ``output_dir``, if any.

    A run killed while saving leaves a folder without its trainer state, which the Trainer writes last;
    transformers' ``get_last_checkpoint`` would pick that folder and the resume would crash, so it is
    skipped here (with a warning) for the newest checkpoint that was saved whole.
    """
    folders = Path(output_dir).glob(f"{PREFIX_CHECKPOINT_DIR}-*") if Path(output_dir).is_dir() else []
    numbered = [(int(f.name.split("-")[1]), f) for f in folders if f.is_dir() and f.name.split("-")[1].isdigit()]
    for _, folder in sorted(numbered, reverse=True):
        if (folder / TRAINER_STATE_NAME).is_file():
            return str(folder)
        logger.warning("skipping %s: it has no %s (the run was killed while saving it)", folder, TRAINER_STATE_NAME)
    return None


def train_sft(model: str, tokenizer: PreTrainedTokenizerBase, records: list[dict], training: SFTConfig,
              resume: bool, command: str, **configs: object) -> SFTTrainer:
    """Fine-tune ``model`` (a folder or hub name) on ``records`` and save it to ``training.output_dir``.

    With ``resume``, training continues from the last checkpoint in ``output_dir`` (a killed run loses
    at most ``save_steps`` steps); without one, it starts afresh.
    """
    if not records:
        raise UserError("no rows to train on")
    training.model_init_kwargs = model_init_kwargs(training.model_init_kwargs)
    trainer = SFTTrainer(model=model, args=training, train_dataset=Dataset.from_list(records),
                         processing_class=tokenizer)
    kept = len(trainer.train_dataset)
    if kept == 0:
        raise UserError(f"no record has a target token within max_length={training.max_length} tokens: the "
                        "prompts are longer than that (a long system prompt?); raise --max_length.")
    if kept < len(records):
        logger.warning("%d of %d records were dropped: no target token within max_length=%d",
                       len(records) - kept, len(records), training.max_length)
    if is_main_process():
        write_run_info(Path(training.output_dir) / "rlt_run.json", command, training=training.to_dict(), **configs)
    checkpoint = last_checkpoint(training.output_dir) if resume else None
    if resume:
        logger.info("resuming from %s", checkpoint or "the start (no checkpoint yet)")
    trainer.train(resume_from_checkpoint=checkpoint)
    trainer.save_model(training.output_dir)
    return trainer


def is_main_process() -> bool:
    from accelerate import PartialState

    return PartialState().is_main_process
