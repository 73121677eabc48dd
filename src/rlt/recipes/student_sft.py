"""``rlt student-sft``: distil a student from explanations (question → thought + solution), with TRL.

    rlt student-sft --model BASE --dataset distilled.jsonl --output_dir runs/student [--config recipe.yaml]

The dataset is any source :func:`rlt.data.load_examples` reads whose rows carry a reasoning trace
(the distilled explanation; an empty trace trains an answer-only student). Each row becomes the
student prompt, as token ids exactly as ``evaluate`` prompts the student, then its answer and end of
turn; the loss is on the answer and its end of turn only. ``--resume true`` continues a killed run.
"""

from __future__ import annotations

from collections.abc import Sequence

from trl import SFTConfig

from rlt.config import parse_command, setup_logging
from rlt.formats import FormatConfig
from rlt.modeling import load_tokenizer
from rlt.records import student_records
from rlt.sft import SFT_DEFAULTS, SFTArguments, check_training_options, load_sft_examples, train_sft


def run(args: SFTArguments, training: SFTConfig, fmt: FormatConfig) -> None:
    check_training_options(training)
    tokenizer = load_tokenizer(args.model)

    # Data: examples → token ids in the student format (the prompt as evaluate prompts it)
    records = student_records(load_sft_examples(args, fmt), tokenizer, fmt)

    # Train and save
    train_sft(args.model, tokenizer, records, training, args.resume, "student-sft", arguments=args, format=fmt)


def parse(argv: Sequence[str] | None) -> tuple[SFTArguments, SFTConfig, FormatConfig]:
    return parse_command(argv, [SFTArguments, SFTConfig, FormatConfig], "student-sft",
                         __doc__.split("\n\n")[0], defaults=SFT_DEFAULTS)


def main(argv: Sequence[str] | None = None) -> int:
    setup_logging()
    args, training, fmt = parse(argv)
    run(args, training, fmt)
    return 0
