"""``rlt student-sft``: distil a student from explanations (question → thought + solution), with TRL.

    rlt student-sft --model BASE --dataset EXPLAINED_ROWS --output_dir runs/student [--config config.yaml]

The dataset is any source :func:`rlt.data.load_examples` reads whose rows carry a reasoning trace
(the distilled explanation; an empty trace trains an answer-only student). Each row becomes the
student prompt, as token ids exactly as ``evaluate`` prompts the student, then its answer and end of
turn; the loss is on the answer and its end of turn only. ``--resume true`` continues a killed run.
"""

from __future__ import annotations

from collections.abc import Sequence

from rlt.commands.arguments import DataArguments
from rlt.commands.parsing import parse_command, setup_logging
from rlt.commands.sft import RLTSFTConfig, SFTArguments, run_sft
from rlt.formats import FormatConfig
from rlt.records import student_records


def parse(argv: Sequence[str] | None) -> tuple[SFTArguments, DataArguments, RLTSFTConfig, FormatConfig]:
    return parse_command(argv, [SFTArguments, DataArguments, RLTSFTConfig, FormatConfig], "student-sft",
                         __doc__.split("\n\n")[0])


def main(argv: Sequence[str] | None = None) -> int:
    setup_logging()
    run_sft("student-sft", *parse(argv), build_records=student_records)
    return 0
