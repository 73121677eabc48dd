"""``rlt student-rl``: GRPO of a student on questions with reference answers and a verifiable reward.

    rlt student-rl --model STUDENT --dataset rows.jsonl --output_dir runs/student_rl [--match math]
        [--format_coef 0.1] [--config configs/paper/student_rl.yaml] [--resume true]

The paper's "cold start": the RLT-distilled student is the starting point of ordinary RL. Every row
becomes the student prompt (exactly as ``evaluate`` and ``student-sft`` build it) and its reference
answer; the student samples ``num_generations`` answers per prompt and each earns 1 if its final
answer is right (``--match math``: math-verify, ``exact``: the toy task, ``countdown``: a Countdown
expression), plus ``format_coef`` for the thought-then-solution format (:mod:`rlt.verifiable`).
The terms are logged as ``student/<term>`` to ``output_dir/metrics.jsonl``; ``--resume true`` continues
a killed run from its last checkpoint.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from datasets import Dataset
from trl import GRPOConfig, GRPOTrainer

from rlt.answers import MATCH_MODES, MatchMode
from rlt.arguments import DataArguments
from rlt.callbacks import JsonlMetricsCallback
from rlt.config import parse_command, setup_logging
from rlt.errors import UserError
from rlt.formats import FormatConfig, SequenceBuilder
from rlt.modeling import load_tokenizer, model_init_kwargs
from rlt.problems import load_problems
from rlt.run_info import write_run_info
from rlt.sft import is_main_process, train_and_save
from rlt.verifiable import VerifiableReward


@dataclass
class StudentRLArguments:
    model: str = field(metadata={"help": "Student to train (e.g. the student-sft output): folder or hub name."})
    match: MatchMode = field(default="math", metadata={"help": "Answer check: 'math' (math-verify), 'exact' "
                                                               "(the toy task) or 'countdown'."})
    format_coef: float = field(default=0.0, metadata={
        "help": "Reward added for the student's format (thought section, then solution section); 0: none."})
    resume: bool = field(default=False, metadata={"help": "Continue from the last checkpoint in output_dir."})

    def __post_init__(self) -> None:
        if self.match not in MATCH_MODES:
            raise UserError(f"match must be one of {', '.join(MATCH_MODES)}, got {self.match!r}")


def build_trainer(args: StudentRLArguments, data: DataArguments, training: GRPOConfig,
                  fmt: FormatConfig) -> GRPOTrainer:
    """Data, reward and trainer, ready to train."""
    training.model_init_kwargs = model_init_kwargs(training.model_init_kwargs)
    tokenizer = load_tokenizer(args.model, "student")

    # Data: the student prompt of every question, with its reference answer
    builder = SequenceBuilder(tokenizer, fmt)
    dataset = Dataset.from_list([{"prompt": builder.student_prompt(p.question), "reference": p.reference}
                                 for p in load_problems(data)])
    if is_main_process():
        write_run_info(training.output_dir, "student-rl", arguments=args, data=data, training=training.to_dict(),
                       format=fmt)

    # Trainer: TRL's GRPO with the verifiable reward
    return GRPOTrainer(model=args.model, reward_funcs=[VerifiableReward(fmt, args.match, args.format_coef)],
                       args=training, processing_class=tokenizer, train_dataset=dataset,
                       callbacks=[JsonlMetricsCallback()])


def parse(argv: Sequence[str] | None) -> tuple[StudentRLArguments, DataArguments, GRPOConfig, FormatConfig]:
    return parse_command(argv, [StudentRLArguments, DataArguments, GRPOConfig, FormatConfig], "student-rl",
                         __doc__.split("\n\n")[0])


def main(argv: Sequence[str] | None = None) -> int:
    setup_logging()
    args, data, training, fmt = parse(argv)
    torch.manual_seed(training.seed)
    trainer = build_trainer(args, data, training, fmt)
    train_and_save(trainer, training.output_dir, args.resume)
    return 0
