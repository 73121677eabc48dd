"""``rlt distill``: a teacher writes explanations for (question, solution) pairs: a student's dataset.

    rlt distill --teacher DIR --dataset rows.jsonl --output_dir runs/distill [--num_samples k]
        [--best_of_k_student STUDENT] [--backend vllm] [--config configs/paper/distill.yaml]

Each (question, solution) becomes a teacher prompt, and the teacher writes ``num_samples``
explanations for it (transformers on CPU or GPU, or vLLM with ``--backend vllm``). Without
``--best_of_k_student`` every explanation becomes a row: k rows per question. With it, every
explanation is scored by the RLT reward with that frozen student judging, and each question keeps
its best one (ties: the lowest sample index), the paper's best-of-k.

Outputs in ``output_dir`` (:class:`DistillOutputs`):

* ``distilled.jsonl``: Bespoke-Stratos-17k's schema, ``{system, conversations: [user, assistant]}``,
  which SkyThought and LLaMA-Factory train on (and ``rlt student-sft`` reads);
* ``distilled_messages.jsonl``: TRL's ``{messages}`` with ``question``, ``solution`` and
  ``reasoning_trace`` (the explanation) columns;
* ``candidates.jsonl``: every explanation written, with its flags and, when scored, its reward;
* the summary: counts (rows whose explanation hit ``max_new_tokens``, rows without the end tag),
  mean explanation length, mean reward of the kept rows, wall time; the run record (:mod:`rlt.run_folder`).

Explanations are saved to ``explanations.journal.jsonl`` (rewards to ``rewards.journal.jsonl``) as they
are made: a killed run started again with the same arguments skips the questions it completed, and a
finished one asked for more rows (``--limit``) or for best-of-k explains or scores only what is new.
With the vLLM backend (one engine for the run, ``--vllm_*`` options) the explanations are saved every
``vllm_save_every`` questions.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from transformers import PreTrainedModel

from rlt.commands.arguments import DataArguments, InferenceArguments, overwrite_option, positive
from rlt.commands.parsing import parse_command, setup_logging
from rlt.data import Example, checked, example_reader, read_json, read_jsonl, write_json, write_jsonl
from rlt.formats import TAG_STYLES, FormatConfig, SequenceBuilder
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
from rlt.progress import in_batches
from rlt.reward import RewardConfig, RLTReward, check_same_tokenizer
from rlt.run_folder import ROW_SELECTION, SPEED_ONLY, SUMMARY, OutputFile, RunFolder, settings

logger = logging.getLogger(__name__)

# Version of an explanation entry's fields: journals of an older layout are refused, not misread.
CANDIDATE_SCHEMA = 3


@dataclass
class DistillArguments:
    teacher: str = field(metadata={"help": "Teacher that writes the explanations: a local folder or a hub name."})
    output_dir: str = field(metadata={"help": "Where the distilled datasets, candidates and summary go."})
    best_of_k_student: str | None = field(
        default=None,
        metadata={"help": "Frozen student that scores the explanations (RLT reward); keep the best per question. "
                          "Default: no scoring, keep all num_samples explanations."},
    )
    score_batch_size: int = field(default=64, metadata={"help": "Explanations scored per reward call (best-of-k)."})
    overwrite: bool = overwrite_option()

    def __post_init__(self) -> None:
        positive(self, "score_batch_size")


@dataclass(frozen=True)
class DistillOutputs:
    """The files of an ``rlt distill`` run folder."""

    folder: Path
    distilled = OutputFile("distilled.jsonl")
    messages = OutputFile("distilled_messages.jsonl")
    candidates = OutputFile("candidates.jsonl")
    summary = OutputFile(SUMMARY)
    explanations_journal = OutputFile("explanations.journal.jsonl")
    rewards_journal = OutputFile("rewards.journal.jsonl")

    def read_summary(self) -> dict:
        return read_json(self.summary)

    def read_messages(self) -> list[dict]:
        return read_jsonl(self.messages)

    def read_candidates(self) -> list[dict]:
        return read_jsonl(self.candidates)


# Candidates: the teacher's explanations, as saved in the journal and candidates.jsonl --------------------


def _candidate_key(entry: dict) -> tuple[int, int, str]:
    return entry["question_index"], entry["sample_index"], entry["row_digest"]


def _question_keys(examples: Sequence[Example], k: int) -> Callable[[int], list[tuple[int, int, str]]]:
    """The journal keys of a question explained k times; they carry a digest of its row, so that the
    explanations of a row since edited are not reused."""
    def keys(question_index: int) -> list[tuple[int, int, str]]:
        example = examples[question_index]
        row_digest = digest(example.question, example.solution)
        return [(question_index, sample, row_digest) for sample in range(k)]

    return keys


def stop_token_ids(builder: SequenceBuilder) -> list[int]:
    """Generation ends at EOS, and at the end tag where it is one token; a tag of several tokens is
    found afterwards by ``split_completion``."""
    tag_ids = builder.encode(builder.fmt.end_explanation)
    ids = {builder.tokenizer.eos_token_id, *(tag_ids if len(tag_ids) == 1 else ())}
    return sorted(i for i in ids if i is not None)


def candidate_entries(builder: SequenceBuilder, examples: Sequence[Example], question_indices: Sequence[int],
                      generations: Sequence[Generation]) -> Iterator[dict]:
    """One entry per completion: the sampled ids, the explanation's text and its flags.

    ``completion_ids`` are what the teacher sampled (less trailing EOS/padding): best-of-k scores exactly
    these. ``explanation`` is the text the teacher wrote before its end tag, special tokens kept, whole
    (:class:`~rlt.formats.SplitCompletion`). ``truncated``: the explanation itself ran into
    ``max_new_tokens`` (a completion that closed its explanation and then ran on is not truncated).
    """
    for generation in generations:
        split = builder.split_completion(generation.token_ids)
        question_index = question_indices[generation.prompt_index]
        example = examples[question_index]
        yield {
            "question_index": question_index,
            "sample_index": generation.sample_index,
            "row_digest": digest(example.question, example.solution),
            "explanation": split.explanation_text,
            "completion_ids": generation.token_ids,
            "found_end_tag": split.found_end_tag,
            "truncated": not (generation.finished or split.found_end_tag),
            "explanation_tokens": len(split.explanation_ids),
        }


def generate_candidates(args: DistillArguments, inference: InferenceArguments, sampling: SamplingConfig,
                        vllm_config: VLLMConfig, builder: SequenceBuilder, examples: Sequence[Example],
                        pending: Sequence[int], journal: Journal, load_teacher: Callable[[], PreTrainedModel]) -> None:
    """``num_samples`` explanations for each pending question, appended to ``journal`` batch by batch
    (with vLLM, a question's seed is its index: a resumed run explains it as an unbroken one would)."""
    prompts = [builder.teacher_prompt(examples[i].question, examples[i].solution) for i in pending]
    stop = stop_token_ids(builder)

    def save(generations: list[Generation]) -> None:
        journal.append(candidate_entries(builder, examples, pending, generations))

    if sampling.backend == "vllm":
        engine = VLLMEngine(args.teacher, vllm_config, inference.dtype, sampling.seed)
        generate_vllm(engine, prompts, sampling, stop, seeds=pending, on_batch=save)
    else:
        generate(load_teacher(), builder.tokenizer, prompts, sampling, stop, on_batch=save)


# Best-of-k: the RLT reward of every candidate -------------------------------------------------------------


def _score_key(candidate: dict) -> tuple[int, int, str]:
    """A score belongs to one sampled completion, so that a score saved for an explanation since
    regenerated (its journal deleted by hand) is never used for the new one."""
    return candidate["question_index"], candidate["sample_index"], digest(candidate["completion_ids"])


def _score_entry_key(entry: dict) -> tuple[int, int, str]:
    return entry["question_index"], entry["sample_index"], entry["digest"]


def score_pending(reward: RLTReward, examples: Sequence[Example], pending: Sequence[dict], journal: Journal,
                  batch_size: int) -> None:
    """Score ``pending`` candidates in batches, appending each batch's terms to ``journal``.

    The reward scores the ids the teacher sampled, as ``teacher-rl`` does: re-encoding the decoded text
    would give other tokens (a different count, in Qwen's vocabulary, for most long explanations).
    """
    for batch, _ in in_batches(pending, batch_size, "scoring"):
        questions = [examples[c["question_index"]] for c in batch]
        terms = reward.score_completions([e.question for e in questions], [e.solution for e in questions],
                                         [c["completion_ids"] for c in batch])
        journal.append({"question_index": c["question_index"], "sample_index": c["sample_index"],
                        "digest": digest(c["completion_ids"]), "terms": t.to_dict()} for c, t in zip(batch, terms))


def scored(args: DistillArguments, inference: InferenceArguments, reward_config: RewardConfig,
           builder: SequenceBuilder, examples: Sequence[Example], candidates: list[dict], journal: Journal,
           load_teacher: Callable[[], PreTrainedModel]) -> list[dict]:
    """The candidates with ``reward`` and ``reward_terms``; those a killed or earlier run scored are not
    scored again."""
    def score(pending: Sequence[dict]) -> None:
        student = load_causal_lm(args.best_of_k_student, inference.dtype, inference.device, frozen=True,
                                 role="best_of_k_student")
        reward = RLTReward(load_teacher(), student, builder.tokenizer, reward_config, builder.fmt)
        score_pending(reward, examples, pending, journal, args.score_batch_size)

    saved = Job(journal, lambda c: [_score_key(c)]).run(candidates, score)
    terms = [saved[_score_key(c)]["terms"] for c in candidates]
    return [{**c, "reward": t["reward"], "reward_terms": t} for c, t in zip(candidates, terms)]


def keep_best(candidates: Sequence[dict]) -> list[dict]:
    """Per question, the candidate with the highest reward; a tie goes to the lowest sample index."""
    best: dict[int, dict] = {}
    for candidate in sorted(candidates, key=lambda c: (c["question_index"], c["sample_index"])):
        current = best.get(candidate["question_index"])
        if current is None or candidate["reward"] > current["reward"]:
            best[candidate["question_index"]] = candidate
    return list(best.values())


# Outputs ---------------------------------------------------------------------------------------------------


def stratos_row(example: Example, explanation: str, fmt: FormatConfig) -> dict:
    """A Bespoke-Stratos-17k row: the student's system prompt and the user → assistant conversation."""
    return {"system": fmt.student_system_prompt, "conversations": [
        {"from": "user", "value": example.question},
        {"from": "assistant", "value": fmt.student_answer(explanation, example.solution)},
    ]}


def messages_row(example: Example, candidate: dict, fmt: FormatConfig) -> dict:
    """A TRL conversational row; the plain columns let ``rlt.data.load_examples`` read the row back
    (``reasoning_trace`` is the explanation) and say where it came from."""
    provenance = {k: candidate[k] for k in ("question_index", "sample_index", "reward") if k in candidate}
    return {"messages": fmt.student_messages(example.question, candidate["explanation"], example.solution),
            "question": example.question, "solution": example.solution,
            "reasoning_trace": candidate["explanation"], **provenance}


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def summarize(examples: Sequence[Example], candidates: Sequence[dict], rows: Sequence[dict]) -> dict:
    """Counts over the rows written (the kept candidates), as the student will see them."""
    return {
        "questions": len(examples),
        "num_samples": len(candidates) // len(examples),
        "candidates": len(candidates),
        "rows": len(rows),
        "truncated": sum(r["truncated"] for r in rows),
        "missing_end_tag": sum(not r["found_end_tag"] for r in rows),
        "mean_explanation_tokens": _mean([r["explanation_tokens"] for r in rows]),
        "mean_reward": _mean([r["reward"] for r in rows if "reward" in r]),
    }


def write_outputs(outputs: DistillOutputs, examples: Sequence[Example], candidates: Sequence[dict],
                  rows: Sequence[dict], fmt: FormatConfig, summary: dict) -> None:
    write_jsonl(outputs.distilled,
                (stratos_row(examples[r["question_index"]], r["explanation"], fmt) for r in rows))
    write_jsonl(outputs.messages, (messages_row(examples[r["question_index"]], r, fmt) for r in rows))
    write_jsonl(outputs.candidates, candidates)
    write_json(outputs.summary, summary)


# The command -----------------------------------------------------------------------------------------------


def run(args: DistillArguments, data: DataArguments, inference: InferenceArguments, sampling: SamplingConfig,
        vllm_config: VLLMConfig, reward_config: RewardConfig, fmt: FormatConfig) -> dict:
    """Distil and write the outputs; returns the summary."""
    started = time.perf_counter()
    sampling = one_sample_if_greedy(sampling, "explanation per question")
    reward_config = reward_config.at_teacher_temperature(sampling.temperature)
    outputs = DistillOutputs(Path(args.output_dir))

    # Teacher and data: prompts from the teacher's tokenizer, which a best-of-k judge must share; every row
    # checked, its prompt against the teacher's context, before any weights load (a reasoning trace in the
    # dataset is not used)
    builder = SequenceBuilder(load_tokenizer(args.teacher, "teacher"), fmt)
    if args.best_of_k_student:
        check_same_tokenizer(builder.tokenizer, load_tokenizer(args.best_of_k_student, "best_of_k_student"))
    context = load_context_length(args.teacher, "teacher")
    examples = data.read(checked(example_reader(TAG_STYLES[fmt.tag_format]), lambda e: builder.too_long(
        builder.teacher_prompt(e.question, e.solution), context, "the teacher prompt"))).items
    load_teacher = functools.cache(functools.partial(load_causal_lm, args.teacher, inference.dtype, inference.device,
                                                     frozen=True, role="teacher"))

    # The run folder: explanations are kept by the settings they depend on, rewards by their judge's
    work = {"explanations": settings({"teacher": args.teacher, "dataset": data.dataset},
                                     ignore=SPEED_ONLY | ROW_SELECTION, data=data, inference=inference,
                                     sampling=sampling, vllm=vllm_config, format=fmt,
                                     rlt_entry_version=CANDIDATE_SCHEMA)}
    if args.best_of_k_student:
        work["rewards"] = settings({"best_of_k_student": args.best_of_k_student}, reward=reward_config)
    expected = (outputs.distilled, outputs.messages, outputs.candidates, outputs.summary)
    with RunFolder(outputs.folder, "distill").claim(work, settings({"dataset": data.dataset}, data=data),
                                                    overwrite=args.overwrite, expected=expected) as claim:
        if claim.finished:
            logger.info("%s holds this distillation, finished: nothing to do (--overwrite true runs it again)",
                        outputs.folder)
            return outputs.read_summary()
        claim.start(arguments=args, data=data, inference=inference, sampling=sampling, vllm=vllm_config,
                    reward=reward_config, format=fmt)

        # Generate: k explanations per question, saved as they come; questions already explained are skipped
        k = sampling.num_samples
        journal = Journal(outputs.explanations_journal, claim.journal_fingerprint("explanations"), _candidate_key,
                          "explanations")
        keys = _question_keys(examples, k)
        done = Job(journal, keys).run(range(len(examples)), lambda pending: generate_candidates(
            args, inference, sampling, vllm_config, builder, examples, pending, journal, load_teacher))
        candidates = [done[key] for q in range(len(examples)) for key in keys(q)]

        # Best-of-k: score every candidate with the RLT reward and keep each question's best; else keep all
        rows = candidates
        if args.best_of_k_student:
            rewards = Journal(outputs.rewards_journal, claim.journal_fingerprint("rewards"), _score_entry_key,
                              "rewards")
            candidates = scored(args, inference, reward_config, builder, examples, candidates, rewards, load_teacher)
            rows = keep_best(candidates)

        summary = {**summarize(examples, candidates, rows), "wall_seconds": round(time.perf_counter() - started, 3)}
        write_outputs(outputs, examples, candidates, rows, fmt, summary)
        claim.finish()
    logger.info("wrote %d rows to %s: %s", len(rows), outputs.folder, json.dumps(summary))
    return summary


def parse(argv: Sequence[str] | None) -> tuple[DistillArguments, DataArguments, InferenceArguments, SamplingConfig,
                                                VLLMConfig, RewardConfig, FormatConfig]:
    return parse_command(argv, [DistillArguments, DataArguments, InferenceArguments, SamplingConfig, VLLMConfig,
                                RewardConfig, FormatConfig], "distill", __doc__.split("\n\n")[0])


def main(argv: Sequence[str] | None = None) -> int:
    setup_logging()
    run(*parse(argv))
    return 0
