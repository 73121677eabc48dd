"""``rlt student-rl``: GRPO of a student on questions with reference answers and a verifiable reward.

    rlt student-rl --model STUDENT --dataset rows.jsonl --output_dir runs/student_rl [--match math]
        [--format_coef 0.1] [--config configs/paper/student_rl.yaml] [--resume true]

The paper's "cold start": the RLT-distilled student is the starting point of ordinary RL. Every row
becomes the student prompt (exactly as ``evaluate`` and ``student-sft`` build it) and its reference
answer; the student samples ``num_generations`` answers per prompt and each earns 1 if its final
answer is right (``--match math``: math-verify, ``exact``: the toy task, ``countdown``: a Countdown
expression), plus ``format_coef`` for the thought-then-solution format (:mod:`rlt.verifiable`).
The terms are logged as ``student/<term>`` to the metrics file (:class:`rlt.training.TrainingOutputs`);
``--resume true`` continues a killed run from its last checkpoint.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from datasets import Dataset
from trl import GRPOConfig, GRPOTrainer

from rlt.answers import MATCH_MODES, MatchMode
from rlt.commands.arguments import DataArguments, overwrite_option
from rlt.commands.parsing import parse_command, setup_logging
from rlt.data import checked
from rlt.errors import UserError
from rlt.formats import FormatConfig, SequenceBuilder
from rlt.modeling import load_context_length, load_tokenizer, model_init_kwargs
from rlt.problems import problem_of
from rlt.training import run_training, training_settings
from rlt.verifiable import VerifiableReward


@dataclass
class StudentRLArguments:
    model: str = field(metadata={"help": "Student to train (e.g. the student-sft output): folder or hub name."})
    match: MatchMode = field(default="math", metadata={"help": "Answer check: 'math' (math-verify), 'exact' "
                                                               "(the toy task), 'countdown' or 'choice'."})
    format_coef: float = field(default=0.0, metadata={
        "help": "Reward added for the student's format (thought section, then solution section); 0: none."})
    resume: bool = field(default=False, metadata={"help": "Continue from the last checkpoint in output_dir."})
    overwrite: bool = overwrite_option()

    def __post_init__(self) -> None:
        if self.match not in MATCH_MODES:
            raise UserError(f"match must be one of {', '.join(MATCH_MODES)}, got {self.match!r}")


def run(args: StudentRLArguments, data: DataArguments, training: GRPOConfig, fmt: FormatConfig) -> GRPOTrainer | None:
    """Check the rows (their prompts within the student's context), claim the run folder, then train."""
    tokenizer = load_tokenizer(args.model, "student")

    # Data: the student prompt of every question, with its reference answer
    builder = SequenceBuilder(tokenizer, fmt)
    context = load_context_length(args.model, "student")
    problems = data.read(checked(problem_of, lambda p: builder.too_long(
        builder.student_prompt(p.question), context, "the student prompt"))).items
    dataset = Dataset.from_list([{"prompt": builder.student_prompt(p.question), "reference": p.reference,
                                  "options": list(p.options)} for p in problems])

    # The run folder, then TRL's GRPO with the verifiable reward
    work = {"training": training_settings({"model": args.model, "dataset": data.dataset}, training, data=data,
                                          format=fmt, reward={"match": args.match, "format_coef": args.format_coef})}
    training.model_init_kwargs = model_init_kwargs(training.model_init_kwargs)
    return run_training(
        "student-rl", training, work, resume=args.resume, overwrite=args.overwrite,
        config={"arguments": args, "data": data, "training": training.to_dict(), "format": fmt},
        build=lambda: GRPOTrainer(model=args.model, reward_funcs=[VerifiableReward(fmt, args.match, args.format_coef)],
                                  args=training, processing_class=tokenizer, train_dataset=dataset),
    )


def parse(argv: Sequence[str] | None) -> tuple[StudentRLArguments, DataArguments, GRPOConfig, FormatConfig]:
    return parse_command(argv, [StudentRLArguments, DataArguments, GRPOConfig, FormatConfig], "student-rl",
                         __doc__.split("\n\n")[0])


def main(argv: Sequence[str] | None = None) -> int:
    setup_logging()
    args, data, training, fmt = parse(argv)
    torch.manual_seed(training.seed)
    run(args, data, training, fmt)
    return 0
