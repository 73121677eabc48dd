"""``rlt teacher-sft``: the teacher's supervised warm-up on the teacher format, with TRL.

    rlt teacher-sft --model BASE --dataset traces.jsonl --output_dir runs/teacher_sft [--config recipe.yaml]

Each row (question, solution, reasoning trace; or Bespoke-Stratos conversations) becomes the teacher
prompt (question and solution given) and the completion (the trace as the explanation, its end tag
and end of turn). The loss is on the completion only. ``--resume true`` continues a killed run.
"""

from __future__ import annotations

from collections.abc import Sequence

from trl import SFTConfig

from rlt.config import parse_command, setup_logging
from rlt.data import load_examples
from rlt.formats import TAG_STYLES, FormatConfig
from rlt.modeling import load_tokenizer
from rlt.records import teacher_records
from rlt.sft import SFTArguments, train_sft


def run(args: SFTArguments, training: SFTConfig, fmt: FormatConfig) -> None:
    # Data: examples → prompt/completion records in the teacher format
    examples = load_examples(args.dataset, args.split, on_error=args.on_error, limit=args.limit,
                             tags=TAG_STYLES[fmt.tag_format]).examples
    records = teacher_records(examples, load_tokenizer(args.model), fmt, source=args.dataset)

    # Train and save
    train_sft(args.model, records, training, args.resume, "teacher-sft", arguments=args, format=fmt)


def parse(argv: Sequence[str] | None) -> tuple[SFTArguments, SFTConfig, FormatConfig]:
    return parse_command(argv, [SFTArguments, SFTConfig, FormatConfig], "teacher-sft",
                         __doc__.split("\n\n")[0])


def main(argv: Sequence[str] | None = None) -> int:
    setup_logging()
    args, training, fmt = parse(argv)
    run(args, training, fmt)
    return 0
