"""Supervised fine-tuning with TRL's ``SFTTrainer``: the shared core of ``teacher-sft`` and ``student-sft``.

The commands build their records (:mod:`rlt.records`: token ids with a completion mask) and hand them
here; this module owns what both need: the trainer, resuming from the last checkpoint, saving, and
the run info.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from datasets import Dataset
from transformers import PreTrainedTokenizerBase, Trainer
from transformers.trainer import TRAINER_STATE_NAME
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR
from trl import SFTConfig, SFTTrainer

from rlt.arguments import DataArguments
from rlt.data import Example
from rlt.errors import UserError
from rlt.formats import FormatConfig
from rlt.modeling import load_tokenizer, model_init_kwargs
from rlt.run_info import write_run_info

logger = logging.getLogger(__name__)

# The records carry their own completion mask: the loss is on the completion unless a run says otherwise.
SFT_DEFAULTS = {"completion_only_loss": True}


@dataclass
class SFTArguments:
    """The options of `rlt teacher-sft` and `rlt student-sft` beside the data, TRL's SFTConfig and the format."""

    model: str = field(metadata={"help": "Base model to train: a local folder or a Hugging Face name."})
    resume: bool = field(default=False, metadata={"help": "Continue from the last checkpoint in output_dir."})


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


def run_sft(command: str, args: SFTArguments, data: DataArguments, training: SFTConfig, fmt: FormatConfig,
            build_records: Callable[[list[Example], PreTrainedTokenizerBase, FormatConfig], list[dict]]) -> SFTTrainer:
    """Load the rows (each needs a reasoning trace), build the records, fine-tune ``args.model`` on them and
    save it to ``training.output_dir``: the whole of ``teacher-sft`` and ``student-sft`` but their records."""
    if training.assistant_only_loss:
        raise UserError("assistant_only_loss: rlt builds the records' token ids itself, with the loss on the "
                        "answer already (completion_only_loss); leave assistant_only_loss off")
    tokenizer = load_tokenizer(args.model)
    records = build_records(data.examples(fmt, require_trace=True), tokenizer, fmt)

    training.model_init_kwargs = model_init_kwargs(training.model_init_kwargs)
    trainer = SFTTrainer(model=args.model, args=training, train_dataset=Dataset.from_list(records),
                         processing_class=tokenizer)
    kept = len(trainer.train_dataset)
    if kept == 0:
        raise UserError(f"no record has a target token within max_length={training.max_length} tokens: the "
                        "prompts are longer than that (a long system prompt?); raise --max_length.")
    if kept < len(records):
        logger.warning("%d of %d records were dropped: no target token within max_length=%d",
                       len(records) - kept, len(records), training.max_length)
    if is_main_process():
        write_run_info(training.output_dir, command, arguments=args, data=data, training=training.to_dict(),
                       format=fmt)
    train_and_save(trainer, training.output_dir, args.resume)
    return trainer


def train_and_save(trainer: Trainer, output_dir: str, resume: bool) -> None:
    """Train (from the last complete checkpoint with ``resume``: a killed run loses at most ``save_steps``
    steps) and save the model to ``output_dir``. Every trainer of rlt ends this way."""
    checkpoint = last_checkpoint(output_dir) if resume else None
    if resume:
        logger.info("resuming from %s", checkpoint or "the start (no checkpoint yet)")
    trainer.train(resume_from_checkpoint=checkpoint)
    trainer.save_model(output_dir)


def is_main_process() -> bool:
    from accelerate import PartialState

    return PartialState().is_main_process
