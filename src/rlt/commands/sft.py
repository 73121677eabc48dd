"""Supervised fine-tuning with TRL's ``SFTTrainer``: the shared core of ``teacher-sft`` and ``student-sft``.

The commands build their records (:mod:`rlt.records`: token ids with a completion mask) and hand them
here; this module owns what both need: their options, the rows, the records' length check, and the
trainer, run by :func:`rlt.training.run_training` (the run folder, resuming, saving, metrics).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from datasets import Dataset
from transformers import PreTrainedTokenizerBase
from trl import SFTConfig, SFTTrainer

from rlt.commands.arguments import DataArguments, overwrite_option
from rlt.data import Example, example_reader
from rlt.defaults import default
from rlt.errors import UserError
from rlt.formats import TAG_STYLES, FormatConfig
from rlt.modeling import load_tokenizer, model_init_kwargs
from rlt.records import records_within
from rlt.training import run_training, training_settings


@dataclass
class SFTArguments:
    """The options of `rlt teacher-sft` and `rlt student-sft` beside the data, TRL's SFTConfig and the format."""

    model: str = field(metadata={"help": "Base model to train: a local folder or a Hugging Face name."})
    resume: bool = field(default=False, metadata={"help": "Continue from the last checkpoint in output_dir."})
    overwrite: bool = overwrite_option()


@dataclass
class RLTSFTConfig(SFTConfig):
    """TRL's SFTConfig, the loss on the completion by default: rlt's records carry their own completion mask,
    which TRL's automatic choice (``None``) would ignore, as it looks for prompt and completion columns."""

    completion_only_loss: bool | None = default(SFTConfig, "completion_only_loss", True,
                                                "the records carry their completion mask")


def run_sft(command: str, args: SFTArguments, data: DataArguments, training: SFTConfig, fmt: FormatConfig,
            build_records: Callable[[list[Example], PreTrainedTokenizerBase, FormatConfig], list[dict]]
            ) -> SFTTrainer | None:
    """Load the rows (each needs a reasoning trace), build the records, fine-tune ``args.model`` on them and
    save it to ``training.output_dir``: the whole of ``teacher-sft`` and ``student-sft`` but their records."""
    if training.assistant_only_loss:
        raise UserError("assistant_only_loss: rlt builds the records' token ids itself, with the loss on the "
                        "answer already (completion_only_loss); leave assistant_only_loss off")
    tokenizer = load_tokenizer(args.model)
    examples = data.read(example_reader(TAG_STYLES[fmt.tag_format], require_trace=True)).items
    cut_at = training.max_length if training.truncation_mode == "keep_start" else None
    records = records_within(build_records(examples, tokenizer, fmt), cut_at)

    work = {"training": training_settings({"model": args.model, "dataset": data.dataset}, training, data=data,
                                          format=fmt)}
    training.model_init_kwargs = model_init_kwargs(training.model_init_kwargs)
    return run_training(
        command, training, work, resume=args.resume, overwrite=args.overwrite,
        config={"arguments": args, "data": data, "training": training.to_dict(), "format": fmt},
        build=lambda: SFTTrainer(model=args.model, args=training, train_dataset=Dataset.from_list(records),
                                 processing_class=tokenizer),
    )
