"""``rlt teacher-rl``: train the teacher with GRPO on the RLT reward, judged by a frozen student.

    rlt teacher-rl --model TEACHER --student STUDENT --dataset rows.jsonl --output_dir runs/teacher_rl \\
        [--config configs/paper/teacher_rl.yaml] [--resume true]

Every row (question, solution) becomes a teacher prompt; the teacher samples ``num_generations``
explanations per prompt at ``temperature``; each is scored by the RLT reward (the teacher's
temperature is the sampling temperature). Defaults follow the paper: temperature 0.7, β = 0.04
against a reference model mixed toward the policy (α = 0.9 every 32 steps), constant lr 1e-6.
Samples of explanations with their reward terms are written to ``output_dir/completions/`` at each
logging step, metrics to the run's metrics file (:class:`rlt.training.TrainingOutputs`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from datasets import Dataset
from transformers import PreTrainedTokenizerBase

from rlt.commands.arguments import DataArguments, overwrite_option
from rlt.commands.parsing import parse_command, setup_logging
from rlt.data import checked, example_reader
from rlt.formats import TAG_STYLES, FormatConfig, SequenceBuilder
from rlt.generation import vllm_memory_kwargs
from rlt.grpo import RLTGRPOConfig, RLTGRPOTrainer
from rlt.modeling import load_causal_lm, load_context_length, load_tokenizer, model_init_kwargs
from rlt.reward import RewardConfig, check_same_tokenizer
from rlt.training import run_training, training_settings


@dataclass
class TeacherRLArguments:
    model: str = field(metadata={"help": "Teacher to train (e.g. the teacher-sft output): folder or hub name."})
    student: str = field(metadata={"help": "Frozen student that scores explanations: folder or hub name."})
    resume: bool = field(default=False, metadata={"help": "Continue from the last checkpoint in output_dir."})
    overwrite: bool = overwrite_option()
    vllm_kv_cache_gib: float | None = field(default=None, metadata={
        "help": "With use_vllm and vllm_mode colocate: the engine's KV cache in GiB, instead of "
                "vllm_gpu_memory_utilization (default without CUDA: 1)."})
    vllm_enforce_eager: bool = field(default=False, metadata={
        "help": "With use_vllm and vllm_mode colocate: run the engine eagerly (no CUDA graphs or torch.compile)."})


@dataclass
class Prepared:
    """A checked teacher-rl run, ready to claim its folder: the settings it learns from, its config for
    run record, and how to build its trainer (which loads the models)."""

    work: dict
    config: dict
    build: Callable[[], RLTGRPOTrainer]


def prepare(args: TeacherRLArguments, data: DataArguments, training: RLTGRPOConfig, reward_config: RewardConfig,
            fmt: FormatConfig) -> Prepared:
    """Everything that is checked before any weights load: tokenizers, rows, settings."""
    reward_config = reward_config.at_teacher_temperature(training.temperature)

    # Tokenizers first: a student that cannot judge this teacher is refused before any weights load
    tokenizer, student_tokenizer = load_tokenizer(args.model, "teacher"), load_tokenizer(args.student, "student")
    check_same_tokenizer(tokenizer, student_tokenizer)

    # Data: one teacher prompt per (question, solution), each within the teacher's context
    builder = SequenceBuilder(tokenizer, fmt)
    context = load_context_length(args.model, "teacher")
    examples = data.read(checked(example_reader(TAG_STYLES[fmt.tag_format]), lambda e: builder.too_long(
        builder.teacher_prompt(e.question, e.solution), context, "the teacher prompt"))).items
    dataset = Dataset.from_list([
        {"prompt": builder.teacher_prompt(e.question, e.solution), "question": e.question, "solution": e.solution}
        for e in examples
    ])

    work = {"training": training_settings({"model": args.model, "student": args.student, "dataset": data.dataset},
                                          training, data=data, reward=reward_config, format=fmt)}
    training.model_init_kwargs = model_init_kwargs(training.model_init_kwargs)
    config = {"arguments": args, "data": data, "training": training.to_dict(), "reward": reward_config, "format": fmt}
    return Prepared(work, config, lambda: build_trainer(args, training, reward_config, fmt, tokenizer,
                                                        student_tokenizer, dataset))


def run(args: TeacherRLArguments, data: DataArguments, training: RLTGRPOConfig, reward_config: RewardConfig,
        fmt: FormatConfig) -> RLTGRPOTrainer | None:
    """Check everything, claim the run folder, then load the models and train."""
    prepared = prepare(args, data, training, reward_config, fmt)
    return run_training("teacher-rl", training, prepared.work, resume=args.resume, overwrite=args.overwrite,
                        config=prepared.config, build=prepared.build)


def build_trainer(args: TeacherRLArguments, training: RLTGRPOConfig, reward_config: RewardConfig, fmt: FormatConfig,
                  tokenizer: PreTrainedTokenizerBase, student_tokenizer: PreTrainedTokenizerBase,
                  dataset: Dataset) -> RLTGRPOTrainer:
    """The models and the trainer: the teacher is loaded by TRL; the student is frozen, in the policy's dtype."""
    student = load_causal_lm(args.student, "bfloat16" if training.bf16 else "float32", device="cpu", frozen=True,
                             role="student")
    colocated = training.use_vllm and training.vllm_mode == "colocate"
    return RLTGRPOTrainer(
        model=args.model, student=student, args=training, processing_class=tokenizer,
        reward_config=reward_config, format_config=fmt, student_tokenizer=student_tokenizer,
        train_dataset=dataset,
        vllm_engine_options=vllm_memory_kwargs(args.vllm_kv_cache_gib, args.vllm_enforce_eager) if colocated else None,
    )


def parse(argv: Sequence[str] | None) -> tuple[TeacherRLArguments, DataArguments, RLTGRPOConfig, RewardConfig,
                                                FormatConfig]:
    return parse_command(argv, [TeacherRLArguments, DataArguments, RLTGRPOConfig, RewardConfig, FormatConfig],
                         "teacher-rl", __doc__.split("\n\n")[0])


def main(argv: Sequence[str] | None = None) -> int:
    setup_logging()
    args, data, training, reward_config, fmt = parse(argv)
    torch.manual_seed(training.seed)
    run(args, data, training, reward_config, fmt)
    return 0
