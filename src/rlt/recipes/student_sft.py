"""``rlt student-sft``: distil a student from explanations (question → thought + solution), with TRL.

    rlt student-sft --model BASE --dataset distilled.jsonl --output_dir runs/student [--config recipe.yaml]

The dataset is any source :func:`rlt.data.load_examples` reads whose rows carry a reasoning trace
(the distilled explanation; an empty trace trains an answer-only student). The loss is on the
student's answer only (TRL's ``assistant_only_loss``). ``--resume true`` continues a killed run.
"""

from __future__ import annotations

from collections.abc import Sequence

from trl import SFTConfig

from rlt.config import parse_command, setup_logging
from rlt.data import load_examples
from rlt.formats import TAG_STYLES, FormatConfig
from rlt.records import student_records
from rlt.sft import SFTArguments, train_sft


def run(args: SFTArguments, training: SFTConfig, fmt: FormatConfig) -> None:
    # Data: examples → chat records in the student format
    examples = load_examples(args.dataset, args.split, on_error=args.on_error, limit=args.limit,
                             tags=TAG_STYLES[fmt.tag_format]).examples
    records = student_records(examples, fmt, source=args.dataset)

    # Train and save
    train_sft(args.model, records, training, args.resume, "student-sft", arguments=args, format=fmt)


def parse(argv: Sequence[str] | None) -> tuple[SFTArguments, SFTConfig, FormatConfig]:
    return parse_command(argv, [SFTArguments, SFTConfig, FormatConfig], "student-sft",
                         __doc__.split("\n\n")[0], defaults={"assistant_only_loss": True})


def main(argv: Sequence[str] | None = None) -> int:
    setup_logging()
    args, training, fmt = parse(argv)
    run(args, training, fmt)
    return 0
