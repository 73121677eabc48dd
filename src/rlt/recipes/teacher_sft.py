"""``rlt teacher-sft``: the teacher's supervised warm-up on the teacher format, with TRL.

    rlt teacher-sft --model BASE --dataset traces.jsonl --output_dir runs/teacher_sft [--config recipe.yaml]

Each row (question, solution, reasoning trace; or Bespoke-Stratos conversations) becomes the teacher
prompt (question and solution given), as token ids exactly as ``teacher-rl`` and ``distill`` prompt the
teacher, then the completion (the trace as the explanation, its end tag and end of turn). The loss is
on the completion only. ``--resume true`` continues a killed run.
"""

from __future__ import annotations

from collections.abc import Sequence

from trl import SFTConfig

from rlt.config import parse_command, setup_logging
from rlt.formats import FormatConfig
from rlt.modeling import load_tokenizer
from rlt.records import teacher_records
from rlt.sft import SFT_DEFAULTS, SFTArguments, check_training_options, load_sft_examples, train_sft


def run(args: SFTArguments, training: SFTConfig, fmt: FormatConfig) -> None:
    check_training_options(training)
    tokenizer = load_tokenizer(args.model)

    # Data: examples → token ids in the teacher format (the prompt as teacher-rl prompts it)
    records = teacher_records(load_sft_examples(args, fmt), tokenizer, fmt)

    # Train and save
    train_sft(args.model, tokenizer, records, training, args.resume, "teacher-sft", arguments=args, format=fmt)


def parse(argv: Sequence[str] | None) -> tuple[SFTArguments, SFTConfig, FormatConfig]:
    return parse_command(argv, [SFTArguments, SFTConfig, FormatConfig], "teacher-sft",
                         __doc__.split("\n\n")[0], defaults=SFT_DEFAULTS)


def main(argv: Sequence[str] | None = None) -> int:
    setup_logging()
    args, training, fmt = parse(argv)
    run(args, training, fmt)
    return 0
