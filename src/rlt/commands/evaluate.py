"""``rlt evaluate``: generate answers with a model on a benchmark and report pass@1 (math-verify).

    rlt evaluate --model DIR_OR_NAME --dataset PATH_OR_NAME --output_dir DIR [--num_samples 4] [--limit N]

The dataset is a local JSONL/JSON/Parquet file or folder (MATH-500, AIME24, GSM8K, ...) or a Hugging Face
dataset name; a row gives its question (``question``, ``prompt`` or ``problem``) and its reference
answer (:func:`rlt.answers.reference_answer`). The model answers as a student: system = the student
system prompt (none if set to ""), user = the question. Each completion's final answer is extracted
(:func:`rlt.answers.extract_answer`) and checked with math-verify (``--match exact`` for the toy task).
pass@1 is the mean over problems of the fraction of a problem's ``num_samples`` completions that are
right. Sampling defaults to the usual settings for reasoning models, temperature 0.6 and top-p 0.95;
``--temperature 0`` is greedy, and then one completion per problem is generated (copies would be equal).

Writes in ``output_dir`` (:class:`EvaluateOutputs`): ``results.jsonl`` (one row per problem: index,
question, reference, predictions, correct, pass_at_1, completions, finished), the summary (pass@1,
counts, settings, and wall_seconds, of this run alone when it resumed another), the run record and
``completions.journal.jsonl``, where completions are saved batch by batch (with ``--backend vllm``, every
``vllm_save_every`` problems). A killed run started again with the same model, data and sampling settings generates only
what is missing; answers are checked at the end, so a finished folder evaluated again with another
``--match`` or other tags is checked again without generating anything.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Hashable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rlt.answers import MATCH_MODES, MatchMode, answers_match
from rlt.arguments import DataArguments, InferenceArguments, overwrite_option
from rlt.config import parse_command, setup_logging
from rlt.data import checked, read_json, read_jsonl, write_json, write_jsonl
from rlt.formats import FormatConfig, SequenceBuilder
from rlt.generation import (
    Generation,
    SamplingConfig,
    VLLMConfig,
    VLLMEngine,
    generate,
    generate_vllm,
    one_sample_if_greedy,
)
from rlt.jobs import Job, Journal, digest
from rlt.modeling import load_causal_lm, load_context_length, load_tokenizer
from rlt.problems import Problem, prediction, problem_of
from rlt.progress import progress_bar
from rlt.run_folder import ROW_SELECTION, SPEED_ONLY, SUMMARY, OutputFile, RunFolder, settings

logger = logging.getLogger(__name__)

# The command's sampling defaults (SamplingConfig's own are the teacher's): the usual evaluation settings
# of reasoning models (DeepSeek-R1, Sky-T1, Bespoke-Stratos), long enough for their traces.
EVALUATE_DEFAULTS = {"temperature": 0.6, "top_p": 0.95, "num_samples": 4, "max_new_tokens": 4096, "split": "test"}


@dataclass
class EvaluateArguments:
    model: str = field(metadata={"help": "Model to evaluate: a local folder or a Hugging Face name."})
    output_dir: str = field(metadata={"help": "Where to write the results, their summary and the run record."})
    match: MatchMode = field(default="math", metadata={"help": "Answer check: 'math' (math-verify), 'exact' "
                                                               "(integer/string equality, the toy task), "
                                                               "'countdown' (a Countdown expression) or 'choice' "
                                                               "(an option letter, GPQA)."})
    overwrite: bool = overwrite_option()

    def __post_init__(self) -> None:
        if self.match not in MATCH_MODES:
            raise ValueError(f"match must be one of {', '.join(MATCH_MODES)}, got {self.match!r}")


@dataclass(frozen=True)
class EvaluateOutputs:
    """The files of an ``rlt evaluate`` run folder."""

    folder: Path
    results = OutputFile("results.jsonl")
    summary = OutputFile(SUMMARY)
    completions_journal = OutputFile("completions.journal.jsonl")

    def read_summary(self) -> dict:
        return read_json(self.summary)

    def read_results(self) -> list[dict]:
        return read_jsonl(self.results)


# Generation ------------------------------------------------------------------------------------------


def _problem_key(problem: Problem) -> tuple[int, str]:
    """A problem's journal key: its row and its question (an entry for a row since edited is not reused)."""
    return problem.index, digest(problem.question)


def _entry_key(entry: dict) -> tuple[int, str]:
    return entry["index"], digest(entry["question"])


def _entries(pending: Sequence[Problem], generations: Sequence[Generation]) -> Iterator[dict]:
    """One journal entry per problem; a batch holds every sample of each of its prompts."""
    by_prompt: dict[int, list[Generation]] = {}
    for generation in generations:
        by_prompt.setdefault(generation.prompt_index, []).append(generation)
    for prompt_index, samples in sorted(by_prompt.items()):
        samples.sort(key=lambda g: g.sample_index)
        problem = pending[prompt_index]
        yield {"index": problem.index, "question": problem.question,
               "completions": [g.text for g in samples], "finished": [g.finished for g in samples]}


def generate_completions(args: EvaluateArguments, inference: InferenceArguments, sampling: SamplingConfig,
                         vllm_config: VLLMConfig, builder: SequenceBuilder, pending: Sequence[Problem],
                         journal: Journal) -> None:
    """Generate ``sampling.num_samples`` completions per pending problem, appending them to ``journal``.

    The prompts are the student prompts ``student-sft`` trains on (:meth:`SequenceBuilder.student_prompt`);
    with vLLM, a problem's seed is its row's index.
    """
    prompts = [builder.student_prompt(p.question) for p in pending]

    def save(generations: list[Generation]) -> None:
        journal.append(_entries(pending, generations))

    if sampling.backend == "vllm":
        engine = VLLMEngine(args.model, vllm_config, inference.dtype, sampling.seed)
        generate_vllm(engine, prompts, sampling, seeds=[p.index for p in pending], on_batch=save)
    else:
        model = load_causal_lm(args.model, inference.dtype, inference.device, frozen=True)
        generate(model, builder.tokenizer, prompts, sampling, on_batch=save)


# Checking --------------------------------------------------------------------------------------------


def check_problem(problem: Problem, completions: list[str], finished: list[bool], fmt: FormatConfig,
                  match: MatchMode) -> dict:
    """The results row of one problem: extracted answers, verdicts, and the problem's pass@1."""
    predictions = [prediction(text, fmt, match, problem.options) for text in completions]
    correct = [answers_match(p, problem.reference, match) for p in predictions]
    return {"index": problem.index, "question": problem.question, "reference": problem.reference,
            "predictions": predictions, "correct": correct, "pass_at_1": sum(correct) / len(correct),
            "completions": completions, "finished": finished}


def summarize(results: Sequence[dict]) -> dict:
    """pass@1 (mean over problems of each problem's fraction right) and what went wrong how often."""
    return {
        "pass@1": sum(r["pass_at_1"] for r in results) / len(results),
        "problems": len(results),
        "completions": sum(len(r["predictions"]) for r in results),
        "no_answer": sum(p is None for r in results for p in r["predictions"]),
        "unfinished": sum(not f for r in results for f in r["finished"]),
    }


def check_all(problems: Sequence[Problem], done: dict[Hashable, dict], fmt: FormatConfig,
              match: MatchMode) -> list[dict]:
    """The results rows, checked only now that every completion exists: a resumed run checks old and new
    completions alike, with this run's tags and ``--match``."""
    results = []
    with progress_bar("checking answers", total=len(problems)) as bar:
        for problem in problems:
            entry = done[_problem_key(problem)]
            results.append(check_problem(problem, entry["completions"], entry["finished"], fmt, match))
            bar.advance(0, 1)
    return results


# The command -----------------------------------------------------------------------------------------


def run(args: EvaluateArguments, data: DataArguments, inference: InferenceArguments, sampling: SamplingConfig,
        vllm_config: VLLMConfig, fmt: FormatConfig) -> dict:
    """Evaluate and write the outputs; returns the summary."""
    started = time.perf_counter()
    sampling = one_sample_if_greedy(sampling, "completion per problem")
    outputs = EvaluateOutputs(Path(args.output_dir))

    # Model and data: every row checked, its prompt against the model's context, before any weights load
    builder = SequenceBuilder(load_tokenizer(args.model), fmt)
    context = load_context_length(args.model)
    problems = data.read(checked(problem_of, lambda p: builder.too_long(
        builder.student_prompt(p.question), context, "the student prompt"))).items

    # The run folder: completions are kept by the settings they depend on (the tags and --match only
    # decide how they are checked)
    work = {"completions": settings({"model": args.model, "dataset": data.dataset}, ignore=SPEED_ONLY | ROW_SELECTION,
                                    data=data, inference=inference, sampling=sampling, vllm=vllm_config,
                                    student_system_prompt=fmt.student_system_prompt)}
    checking = settings({"dataset": data.dataset}, data=data, match=args.match, format=fmt)
    with RunFolder(outputs.folder, "evaluate").claim(work, checking, overwrite=args.overwrite,
                                                     expected=(outputs.results, outputs.summary)) as claim:
        if claim.finished:
            logger.info("%s holds this evaluation, finished: nothing to do (--overwrite true runs it again)",
                        outputs.folder)
            return outputs.read_summary()
        claim.start(arguments=args, data=data, inference=inference, sampling=sampling, vllm=vllm_config, format=fmt)

        # Generate what the journal lacks, then check every answer
        journal = Journal(outputs.completions_journal, claim.journal_fingerprint("completions"), _entry_key,
                          "completions")
        done = Job(journal, lambda p: [_problem_key(p)]).run(
            problems, lambda pending: generate_completions(args, inference, sampling, vllm_config, builder, pending,
                                                           journal))
        results = check_all(problems, done, fmt, args.match)
        summary = {**summarize(results), "num_samples": sampling.num_samples, "greedy": sampling.greedy,
                   "temperature": sampling.temperature, "top_p": sampling.top_p,
                   "max_new_tokens": sampling.max_new_tokens, "seed": sampling.seed, "backend": sampling.backend,
                   "match": args.match, "model": args.model, "dataset": data.dataset, "split": data.split,
                   "wall_seconds": round(time.perf_counter() - started, 3)}
        write_jsonl(outputs.results, results)
        write_json(outputs.summary, summary)
        claim.finish()
    logger.info("pass@1 = %.4f on %d problems × %d samples (%d without an answer, %d unfinished) → %s",
                summary["pass@1"], summary["problems"], sampling.num_samples, summary["no_answer"],
                summary["unfinished"], outputs.folder)
    return summary


def parse(argv: Sequence[str] | None) -> tuple[EvaluateArguments, DataArguments, InferenceArguments, SamplingConfig,
                                                VLLMConfig, FormatConfig]:
    return parse_command(argv, [EvaluateArguments, DataArguments, InferenceArguments, SamplingConfig, VLLMConfig,
                                FormatConfig],
                         "evaluate", __doc__.split("\n\n")[0], defaults=EVALUATE_DEFAULTS)


def main(argv: Sequence[str] | None = None) -> int:
    setup_logging()
    run(*parse(argv))
    return 0
