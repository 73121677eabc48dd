"""``rlt evaluate``: generate answers with a model on a benchmark and report pass@1 (math-verify).

    rlt evaluate --model DIR_OR_NAME --dataset PATH_OR_NAME --output_dir DIR [--num_samples 4] [--limit N]
    rlt evaluate --model DIR_OR_NAME --benchmark aime24,math500,gpqa_diamond --output_dir DIR [--protocol r1]
    rlt evaluate --compare DIR_OR_SCORES.yaml ...

The dataset is a local JSONL/JSON/Parquet file or folder (MATH-500, AIME24, GSM8K, ...) or a Hugging Face
dataset name; a row gives its question (``question``, ``prompt`` or ``problem``) and its reference
answer (:func:`rlt.answers.reference_answer`). The model answers as a student: system = the student
system prompt (none if set to ""), user = the question. Each completion's final answer is extracted
(:func:`rlt.answers.extract_answer`) and checked with math-verify (``--match exact`` for the toy task).
pass@1 is the mean over problems of the fraction of a problem's ``num_samples`` completions that are
right. Sampling defaults to the usual settings for reasoning models, temperature 0.6 and top-p 0.95;
``--temperature 0`` is greedy, and then one completion per problem is generated (copies would be equal).

``--benchmark`` sets a published protocol (:mod:`rlt.evaluation`: dataset, question wording, answer check,
sampling), which flags override; several benchmarks go to ``output_dir/<name>`` each, with a table of all
(``results.md``, ``results.json``: pass@1 ± its standard error over problems, and the mean). ``--compare``
prints evaluation folders, benchmark tables and YAML files of published numbers side by side.

Writes in ``output_dir`` (:class:`EvaluateOutputs`): ``results.jsonl`` (one row per problem: index,
question, reference, predictions, correct, pass_at_1, completions, finished), the summary (pass@1,
counts, settings, and wall_seconds, of this run alone when it resumed another), the run record and
``completions.journal.jsonl``, where completions are saved batch by batch (with ``--backend vllm``, every
``vllm_save_every`` problems). A killed run started again with the same model, data and sampling settings generates only
what is missing; answers are checked at the end, so a finished folder evaluated again with another
``--match`` or other tags is checked again without generating anything.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from collections.abc import Hashable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import yaml

from rlt.answers import MATCH_MODES, MatchMode, answers_match
from rlt.commands.arguments import DataArguments, InferenceArguments, overwrite_option
from rlt.commands.parsing import parse_command, setup_logging
from rlt.data import RowRef, checked, read_json, read_jsonl, write_json, write_jsonl
from rlt.defaults import default
from rlt.errors import UserError
from rlt.evaluation import BENCHMARKS, PROTOCOLS, Score, benchmark_names, pass_at_1_stderr, table
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

@dataclass
class EvaluateSamplingConfig(SamplingConfig):
    """Sampling as reasoning models are usually evaluated (DeepSeek-R1, Sky-T1, Bespoke-Stratos), long enough for
    their traces; :class:`SamplingConfig`'s own defaults are the teacher's."""

    temperature: float = default(SamplingConfig, "temperature", 0.6, "reasoning models' usual evaluation")
    top_p: float = default(SamplingConfig, "top_p", 0.95, "reasoning models' usual evaluation")
    num_samples: int = default(SamplingConfig, "num_samples", 4, "pass@1 averaged over samples")
    max_new_tokens: int = default(SamplingConfig, "max_new_tokens", 4096, "long enough for reasoning traces")


@dataclass
class EvaluateDataArguments(DataArguments):
    split: str | None = default(DataArguments, "split", "test", "a benchmark's held-out split")


@dataclass
class EvaluateArguments:
    model: str = field(metadata={"help": "Model to evaluate: a local folder or a Hugging Face name."})
    output_dir: str = field(metadata={"help": "Where to write the results, their summary and the run record."})
    match: MatchMode = field(default="math", metadata={"help": "Answer check: 'math' (math-verify), 'exact' "
                                                               "(integer/string equality, the toy task), "
                                                               "'countdown' (a Countdown expression) or 'choice' "
                                                               "(an option letter, GPQA)."})
    question_template: str = field(default="{question}", metadata={
        "help": "The question as the model is asked it; {question} stands for the row's question."})
    benchmark: str | None = field(default=None, metadata={
        "help": f"A benchmark's published protocol ({', '.join(BENCHMARKS)}; several, comma-separated, each in "
                "output_dir/<name> with a table of all): its dataset, wording and answer check (flags override)."})
    benchmark_data: str | None = field(default=None, metadata={
        "help": "Local copies standing in for the presets' hub datasets: NAME=PATH, comma-separated."})
    protocol: Literal["skythought", "r1"] = field(default="skythought", metadata={
        "help": "With --benchmark, the sampling: 'skythought' (SkyThought 4bb8f3e, the paper's: greedy, 32k "
                "tokens) or 'r1' (temperature 0.6, top-p 0.95, 4 samples)."})
    overwrite: bool = overwrite_option()

    def __post_init__(self) -> None:
        if self.match not in MATCH_MODES:
            raise ValueError(f"match must be one of {', '.join(MATCH_MODES)}, got {self.match!r}")
        if "{question}" not in self.question_template:
            raise ValueError(f"question_template must contain {{question}}, got {self.question_template!r}")
        if self.benchmark is not None:
            benchmark_names(self.benchmark)


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


@dataclass(frozen=True)
class BenchmarkTableOutputs:
    """An ``rlt evaluate --benchmark a,b`` folder: one evaluation folder per benchmark, and their table."""

    folder: Path
    table_md = OutputFile("results.md")
    table_json = OutputFile("results.json")

    def benchmark(self, name: str) -> EvaluateOutputs:
        return EvaluateOutputs(self.folder / name)

    def read_table(self) -> dict:
        return read_json(self.table_json)


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
        "pass@1_stderr": pass_at_1_stderr([r["pass_at_1"] for r in results]),
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
    def asked(record: dict, at: RowRef) -> Problem:
        problem = problem_of(record, at)
        return replace(problem, question=args.question_template.replace("{question}", problem.question))

    problems = data.read(checked(asked, lambda p: builder.too_long(
        builder.student_prompt(p.question), context, "the student prompt"))).items

    # The run folder: completions are kept by the settings they depend on (the tags and --match only
    # decide how they are checked)
    work = {"completions": settings({"model": args.model, "dataset": data.dataset}, ignore=SPEED_ONLY | ROW_SELECTION,
                                    data=data, inference=inference, sampling=sampling, vllm=vllm_config,
                                    student_system_prompt=fmt.student_system_prompt,
                                    question_template=args.question_template)}
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
                   "benchmark": args.benchmark, "protocol": args.protocol if args.benchmark else None,
                   "wall_seconds": round(time.perf_counter() - started, 3)}
        write_jsonl(outputs.results, results)
        write_json(outputs.summary, summary)
        claim.finish()
    logger.info("pass@1 = %.4f on %d problems × %d samples (%d without an answer, %d unfinished) → %s",
                summary["pass@1"], summary["problems"], sampling.num_samples, summary["no_answer"],
                summary["unfinished"], outputs.folder)
    return summary


def parse(argv: Sequence[str] | None, benchmark: str | None = None, protocol: str = "skythought",
          local: dict[str, str] | None = None
          ) -> tuple[EvaluateArguments, DataArguments, InferenceArguments, SamplingConfig, VLLMConfig, FormatConfig]:
    """The options, on ``benchmark``'s preset and ``protocol``'s sampling when one is named (as defaults:
    the config file and flags override them), its dataset a ``local`` copy if one is given."""
    presets = {}
    if benchmark is not None:
        presets = {**PROTOCOLS[protocol], **BENCHMARKS[benchmark].defaults()}
        if benchmark in (local or {}):
            presets["dataset"] = local[benchmark]
    parsed = parse_command(argv, [EvaluateArguments, EvaluateDataArguments, InferenceArguments, EvaluateSamplingConfig,
                                  VLLMConfig, FormatConfig], "evaluate", __doc__.split("\n\n")[0], presets=presets)
    if benchmark is not None:
        parsed[0].benchmark = benchmark
    return parsed


@dataclass(frozen=True)
class _Presets:
    """What decides the options' defaults, read before the options proper (by flag or from ``--config``)."""

    names: list[str]
    protocol: str
    local: dict[str, str]


def _presets(argv: Sequence[str]) -> _Presets:
    early = argparse.ArgumentParser(add_help=False)
    for flag in ("--benchmark", "--protocol", "--benchmark_data", "--config"):
        early.add_argument(flag)
    known, _ = early.parse_known_args(argv)
    config = yaml.safe_load(Path(known.config).read_text()) if known.config else {}
    config = config if isinstance(config, dict) else {}
    benchmarks = known.benchmark or config.get("benchmark")
    protocol = known.protocol or config.get("protocol") or "skythought"
    if protocol not in PROTOCOLS:
        raise UserError(f"protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
    local = {}
    for item in filter(None, (known.benchmark_data or config.get("benchmark_data") or "").split(",")):
        name, equals, path = item.partition("=")
        if not equals or name.strip() not in BENCHMARKS:
            raise UserError(f"benchmark_data takes NAME=PATH items with a known benchmark, got {item!r}")
        local[name.strip()] = path.strip()
    return _Presets(benchmark_names(benchmarks) if benchmarks else [], protocol, local)


def run_benchmarks(argv: Sequence[str], presets: _Presets) -> dict:
    """Each benchmark in ``output_dir/<name>`` (its own run folder), then their table; returns the table."""
    names, protocol = presets.names, presets.protocol
    runs = [parse(argv, name, protocol, presets.local) for name in names]  # all checked before any model loads
    table_outputs = BenchmarkTableOutputs(Path(runs[0][0].output_dir))
    scores = {}
    for name, (args, *configs) in zip(names, runs):
        args.output_dir = str(table_outputs.benchmark(name).folder)
        summary = run(args, *configs)
        scores[name] = {"pass@1": summary["pass@1"], "pass@1_stderr": summary["pass@1_stderr"],
                        "problems": summary["problems"], "num_samples": summary["num_samples"]}
    result = {"model": runs[0][0].model, "protocol": protocol, "benchmarks": scores,
              "mean": statistics.fmean(s["pass@1"] for s in scores.values())}
    write_json(table_outputs.table_json, result)
    rows = {result["model"]: {name: Score(s["pass@1"], s["pass@1_stderr"]) for name, s in scores.items()}}
    table_outputs.table_md.write_text(table(rows) + "\n")
    print(table(rows))
    return result


def compared(sources: Sequence[str]) -> dict[str, dict[str, Score]]:
    """The rows of a comparison: a benchmark table's folder, an evaluation's folder, or a YAML of published
    numbers (``model: {benchmark: pass@1}``, in percent or as a fraction), each named by its model."""
    rows: dict[str, dict[str, Score]] = {}
    for source in sources:
        path = Path(source)
        tables, single = BenchmarkTableOutputs(path), EvaluateOutputs(path)
        if tables.table_json.is_file():
            found = tables.read_table()
            rows[found["model"]] = {name: Score(s["pass@1"], s["pass@1_stderr"])
                                    for name, s in found["benchmarks"].items()}
        elif single.summary.is_file():
            summary = single.read_summary()
            rows.setdefault(summary["model"], {})[summary.get("benchmark") or path.name] = Score(
                summary["pass@1"], summary.get("pass@1_stderr"))
        elif path.is_file() and path.suffix in (".yaml", ".yml"):
            for model, scores in (yaml.safe_load(path.read_text()) or {}).items():
                rows[model] = {name: Score(value / 100 if value > 1 else value) for name, value in scores.items()}
        else:
            raise UserError(f"--compare {source}: neither an evaluation folder, a benchmark table's, nor a YAML "
                            "file of scores")
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    setup_logging()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--compare"]:
        if len(argv) < 2:
            raise UserError("--compare needs evaluation folders or YAML files of scores to compare")
        print(table(compared(argv[1:])))
        return 0
    presets = _presets(argv)
    if len(presets.names) > 1:
        run_benchmarks(argv, presets)
    else:
        run(*parse(argv, presets.names[0] if presets.names else None, presets.protocol, presets.local))
    return 0
