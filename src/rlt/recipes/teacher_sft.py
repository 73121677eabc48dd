"""``rlt teacher-sft``: the teacher's supervised warm-up on the teacher format, with TRL.

    rlt teacher-sft --model BASE --dataset traces.jsonl --output_dir runs/teacher_sft [--config recipe.yaml]

Each row (question, solution, reasoning trace; or Bespoke-Stratos conversations) becomes the teacher
prompt (question and solution given) and the completion (the trace as the explanation, its end tag
and end of turn). The loss is on the completion only. ``--resume true`` continues a killed run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from trl import SFTConfig

from rlt.config import parse_command, setup_logging
from rlt.data import load_examples
from rlt.formats import TAG_STYLES, FormatConfig
from rlt.modeling import load_tokenizer
from rlt.records import teacher_records
from rlt.sft import train_sft


@dataclass
class TeacherSFTArguments:
    model: str = field(metadata={"help": "Base model to warm up: a local folder or a Hugging Face name."})
    dataset: str = field(metadata={"help": "Rows with question, solution and reasoning trace (any rlt format)."})
    split: str | None = field(default=None, metadata={"help": "Dataset split (default: the only one / train)."})
    limit: int | None = field(default=None, metadata={"help": "Use only the first N examples."})
    on_error: Literal["raise", "skip"] = field(default="raise", metadata={"help": "Bad rows: raise or skip."})
    resume: bool = field(default=False, metadata={"help": "Continue from the last checkpoint in output_dir."})


def run(args: TeacherSFTArguments, training: SFTConfig, fmt: FormatConfig) -> None:
    # Data: examples → prompt/completion records in the teacher format
    examples = load_examples(args.dataset, args.split, on_error=args.on_error, limit=args.limit,
                             tags=TAG_STYLES[fmt.tag_format]).examples
    records = teacher_records(examples, load_tokenizer(args.model), fmt, source=args.dataset)

    # Train and save
    train_sft(args.model, records, training, args.resume, "teacher-sft", arguments=args, format=fmt)


def parse(argv: Sequence[str] | None) -> tuple[TeacherSFTArguments, SFTConfig, FormatConfig]:
    return parse_command(argv, [TeacherSFTArguments, SFTConfig, FormatConfig], "teacher-sft",
                         __doc__.split("\n\n")[0])


def main(argv: Sequence[str] | None = None) -> int:
    setup_logging()
    args, training, fmt = parse(argv)
    run(args, training, fmt)
    return 0
