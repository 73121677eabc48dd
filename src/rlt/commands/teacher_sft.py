"""``rlt teacher-sft``: the teacher's supervised warm-up on the teacher format, with TRL.

    rlt teacher-sft --model BASE --dataset traces.jsonl --output_dir runs/teacher_sft [--config config.yaml]

Each row (question, solution, reasoning trace; or Bespoke-Stratos conversations) becomes the teacher
prompt (question and solution given), as token ids exactly as ``teacher-rl`` and ``distill`` prompt the
teacher, then the completion (the trace as the explanation, its end tag and end of turn). The loss is
on the completion only. ``--resume true`` continues a killed run.
"""

from __future__ import annotations

from collections.abc import Sequence

from rlt.commands.arguments import DataArguments
from rlt.commands.parsing import parse_command, setup_logging
from rlt.commands.sft import RLTSFTConfig, SFTArguments, run_sft
from rlt.formats import FormatConfig
from rlt.records import teacher_records


def parse(argv: Sequence[str] | None) -> tuple[SFTArguments, DataArguments, RLTSFTConfig, FormatConfig]:
    return parse_command(argv, [SFTArguments, DataArguments, RLTSFTConfig, FormatConfig], "teacher-sft",
                         __doc__.split("\n\n")[0])


def main(argv: Sequence[str] | None = None) -> int:
    setup_logging()
    run_sft("teacher-sft", *parse(argv), build_records=teacher_records)
    return 0
