"""``rlt distill``: a teacher writes explanations for (question, solution) pairs: a student's dataset.

    rlt distill --teacher DIR --dataset rows.jsonl --output_dir runs/distill [--num_samples k]
        [--best_of_k_student STUDENT] [--backend vllm] [--config configs/paper/distill.yaml]

Each (question, solution) becomes a teacher prompt, and the teacher writes ``num_samples``
explanations for it (transformers on CPU or GPU, or vLLM with ``--backend vllm``). Without
``--best_of_k_student`` every explanation becomes a row: k rows per question. With it, every
explanation is scored by the RLT reward with that frozen student judging, and each question keeps
its best one (ties: the lowest sample index), the paper's best-of-k.

Outputs in ``output_dir``:

* ``distilled.jsonl``: Bespoke-Stratos-17k's schema, ``{system, conversations: [user, assistant]}``,
  which SkyThought and LLaMA-Factory train on (and ``rlt student-sft`` reads);
* ``distilled_messages.jsonl``: TRL's ``{messages}`` with ``question``, ``solution`` and
  ``reasoning_trace`` (the explanation) columns;
* ``candidates.jsonl``: every explanation written, with its flags and, when scored, its reward;
* ``summary.json``: counts (rows whose explanation hit ``max_new_tokens``, rows without the end tag),
  mean explanation length, mean reward of the kept rows, wall time; ``rlt_run.json``: the config.

Explanations are appended to ``candidates.partial.jsonl`` (rewards to ``scores.partial.jsonl``) as
they are made: a killed run restarted with the same arguments skips the questions it completed
(``--limit`` and batch sizes may change; other settings are refused). With the vLLM backend the
explanations are saved when the whole generation call returns.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import time
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from transformers import PreTrainedModel

from rlt.arguments import DataArguments, InferenceArguments
from rlt.config import parse_command, setup_logging
from rlt.data import Example, write_json, write_jsonl
from rlt.formats import FormatConfig, SequenceBuilder
from rlt.generation import Generation, SamplingConfig, generate, generate_vllm, one_sample_if_greedy
from rlt.modeling import load_causal_lm, load_tokenizer
from rlt.progress import progress_bar
from rlt.resume import PartialFile, settings_fingerprint
from rlt.reward import RewardConfig, RLTReward, check_same_tokenizer
from rlt.run_info import write_run_info

logger = logging.getLogger(__name__)

CANDIDATES_PARTIAL, SCORES_PARTIAL = "candidates.partial.jsonl", "scores.partial.jsonl"
DISTILLED, MESSAGES, CANDIDATES = "distilled.jsonl", "distilled_messages.jsonl", "candidates.jsonl"
SUMMARY = "summary.json"
# Version of a candidate entry's fields: partial files of an older layout are refused, not misread.
CANDIDATE_SCHEMA = 2


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


# Candidates: the teacher's explanations, as saved in the partial file and candidates.jsonl ----------------


def _candidate_key(entry: dict) -> tuple[int, int]:
    return entry["question_index"], entry["sample_index"]


def _generation_fingerprint(args: DistillArguments, data: DataArguments, inference: InferenceArguments,
                            sampling: SamplingConfig, fmt: FormatConfig) -> str:
    """What the explanations depend on (:func:`rlt.resume.settings_fingerprint`)."""
    return settings_fingerprint({"teacher": args.teacher, "dataset": data.dataset}, data=data, inference=inference,
                                sampling=sampling, format=fmt, entries=CANDIDATE_SCHEMA)


def stop_token_ids(builder: SequenceBuilder) -> list[int]:
    """Generation ends at EOS, and at the end tag where it is one token; a tag of several tokens is
    found afterwards by ``split_completion``."""
    tag_ids = builder.encode(builder.fmt.end_explanation)
    ids = {builder.tokenizer.eos_token_id, *(tag_ids if len(tag_ids) == 1 else ())}
    return sorted(i for i in ids if i is not None)


def candidate_entries(builder: SequenceBuilder, question_indices: Sequence[int],
                      generations: Sequence[Generation]) -> Iterator[dict]:
    """One entry per completion: the sampled ids, the explanation's text and its flags.

    ``completion_ids`` are what the teacher sampled (less trailing EOS/padding): best-of-k scores exactly
    these. ``explanation`` is the text the teacher wrote before its end tag, special tokens kept, whole
    (:class:`~rlt.formats.SplitCompletion`). ``truncated``: the explanation itself ran into
    ``max_new_tokens`` (a completion that closed its explanation and then ran on is not truncated).
    """
    for generation in generations:
        split = builder.split_completion(generation.token_ids)
        yield {
            "question_index": question_indices[generation.prompt_index],
            "sample_index": generation.sample_index,
            "explanation": split.explanation_text,
            "completion_ids": generation.token_ids,
            "found_end_tag": split.found_end_tag,
            "truncated": not (generation.finished or split.found_end_tag),
            "explanation_tokens": len(split.explanation_ids),
        }


def generate_candidates(args: DistillArguments, inference: InferenceArguments, sampling: SamplingConfig,
                        builder: SequenceBuilder, examples: Sequence[Example], pending: Sequence[int],
                        partial: PartialFile, load_teacher: Callable[[], PreTrainedModel]) -> None:
    """``num_samples`` explanations for each pending question, appended to ``partial`` batch by batch."""
    prompts = [builder.teacher_prompt(examples[i].question, examples[i].solution) for i in pending]
    stop = stop_token_ids(builder)

    def save(generations: list[Generation]) -> None:
        partial.append(candidate_entries(builder, pending, generations))

    if sampling.backend == "vllm":
        # generate_vllm loads the engine per call and has no per-batch hook: one call, saved when it returns.
        save(generate_vllm(args.teacher, prompts, sampling, stop, dtype=inference.dtype))
    else:
        generate(load_teacher(), builder.tokenizer, prompts, sampling, stop, on_batch=save)


# Best-of-k: the RLT reward of every candidate -------------------------------------------------------------


def _digest(ids: Sequence[int]) -> str:
    return hashlib.sha256(json.dumps(list(ids)).encode()).hexdigest()[:16]


def _score_key(candidate: dict) -> tuple[int, int, str]:
    """A score belongs to one sampled completion, so that a score saved for an explanation since
    regenerated (its partial file deleted by hand) is never used for the new one."""
    return (*_candidate_key(candidate), _digest(candidate["completion_ids"]))


def _score_entry_key(entry: dict) -> tuple[int, int, str]:
    return entry["question_index"], entry["sample_index"], entry["digest"]


def _scores_fingerprint(args: DistillArguments, reward_config: RewardConfig, generation_fingerprint: str) -> str:
    return settings_fingerprint({"student": args.best_of_k_student}, explanations=generation_fingerprint,
                                reward=reward_config)


def score_pending(reward: RLTReward, examples: Sequence[Example], pending: Sequence[dict], partial: PartialFile,
                  batch_size: int) -> None:
    """Score ``pending`` candidates in batches, appending each batch's terms to ``partial``.

    The reward scores the ids the teacher sampled, as ``teacher-rl`` does: re-encoding the decoded text
    would give other tokens (a different count, in Qwen's vocabulary, for most long explanations).
    """
    with progress_bar("scoring", total=len(pending)) as bar:
        for start in range(0, len(pending), batch_size):
            batch = pending[start:start + batch_size]
            questions = [examples[c["question_index"]] for c in batch]
            terms = reward.score_completions([e.question for e in questions], [e.solution for e in questions],
                                             [c["completion_ids"] for c in batch])
            partial.append({"question_index": c["question_index"], "sample_index": c["sample_index"],
                            "digest": _digest(c["completion_ids"]), "terms": t.to_dict()} for c, t in zip(batch, terms))
            bar.advance(0, len(batch))


def scored(args: DistillArguments, inference: InferenceArguments, reward_config: RewardConfig,
           builder: SequenceBuilder,
           examples: Sequence[Example], candidates: list[dict], partial: PartialFile,
           load_teacher: Callable[[], PreTrainedModel]) -> list[dict]:
    """The candidates with ``reward`` and ``reward_terms``; those a killed run scored are not rescored."""
    saved = partial.load()
    pending = [c for c in candidates if _score_key(c) not in saved]
    logger.info("scoring with %s: %d explanations, %d already scored", args.best_of_k_student, len(candidates),
                len(candidates) - len(pending))
    if pending:
        student = load_causal_lm(args.best_of_k_student, inference.dtype, inference.device, frozen=True,
                                 role="best_of_k_student")
        reward = RLTReward(load_teacher(), student, builder.tokenizer, reward_config, builder.fmt)
        score_pending(reward, examples, pending, partial, args.score_batch_size)
        saved = partial.load()
    terms = [saved[_score_key(c)]["terms"] for c in candidates]
    return [{**c, "reward": t["reward"], "reward_terms": t} for c, t in zip(candidates, terms)]


def keep_best(candidates: Sequence[dict]) -> list[dict]:
    """Per question, the candidate with the highest reward; a tie goes to the lowest sample index."""
    best: dict[int, dict] = {}
    for candidate in sorted(candidates, key=_candidate_key):
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


def write_outputs(output_dir: Path, examples: Sequence[Example], candidates: Sequence[dict],
                  rows: Sequence[dict], fmt: FormatConfig, summary: dict) -> None:
    write_jsonl(output_dir / DISTILLED,
                (stratos_row(examples[r["question_index"]], r["explanation"], fmt) for r in rows))
    write_jsonl(output_dir / MESSAGES, (messages_row(examples[r["question_index"]], r, fmt) for r in rows))
    write_jsonl(output_dir / CANDIDATES, candidates)
    write_json(output_dir / SUMMARY, summary)


# The command -----------------------------------------------------------------------------------------------


def run(args: DistillArguments, data: DataArguments, inference: InferenceArguments, sampling: SamplingConfig,
        reward_config: RewardConfig, fmt: FormatConfig) -> dict:
    """Distil and write the outputs; returns the summary."""
    started = time.perf_counter()
    sampling = one_sample_if_greedy(sampling, "explanation per question")
    # The reward's teacher log-probs are the teacher's at its sampling temperature, as in teacher-rl (greedy
    # decoding has none: then the paper's 0.7 unless set).
    reward_config = (reward_config.at_sampling_temperature(sampling.temperature) if not sampling.greedy
                     else replace(reward_config, teacher_temperature=reward_config.teacher_temperature or 0.7))
    output_dir = Path(args.output_dir)

    # Data: (question, solution) per example; a reasoning trace in the dataset is not used
    examples = data.examples(fmt)

    # Teacher: prompts from its tokenizer, which a best-of-k judge must share (checked before any weights load);
    # the model is loaded once, when first needed (if at all)
    builder = SequenceBuilder(load_tokenizer(args.teacher, "teacher"), fmt)
    if args.best_of_k_student:
        check_same_tokenizer(builder.tokenizer, load_tokenizer(args.best_of_k_student, "best_of_k_student"))
    load_teacher = functools.cache(functools.partial(load_causal_lm, args.teacher, inference.dtype, inference.device,
                                                     frozen=True, role="teacher"))
    write_run_info(output_dir, "distill", arguments=args, data=data, inference=inference, sampling=sampling,
                   reward=reward_config, format=fmt)

    # Generate: k explanations per question, saved as they come; questions a killed run completed are skipped
    k = sampling.num_samples
    candidates_partial = PartialFile(output_dir / CANDIDATES_PARTIAL,
                                     _generation_fingerprint(args, data, inference, sampling, fmt),
                                     _candidate_key, "explanations")
    done: dict[Hashable, dict] = candidates_partial.load()
    pending = [q for q in range(len(examples)) if any((q, s) not in done for s in range(k))]
    logger.info("%d questions × %d explanations: %d questions already done, %d to go", len(examples), k,
                len(examples) - len(pending), len(pending))
    if pending:
        generate_candidates(args, inference, sampling, builder, examples, pending, candidates_partial, load_teacher)
        done = candidates_partial.load()
    candidates = [done[(q, s)] for q in range(len(examples)) for s in range(k)]

    # Best-of-k: score every candidate with the RLT reward and keep each question's best; else keep all
    partials, rows = [candidates_partial], candidates
    if args.best_of_k_student:
        scores_partial = PartialFile(output_dir / SCORES_PARTIAL,
                                     _scores_fingerprint(args, reward_config, candidates_partial.fingerprint),
                                     _score_entry_key, "rewards")
        partials.append(scores_partial)
        candidates = scored(args, inference, reward_config, builder, examples, candidates, scores_partial,
                            load_teacher)
        rows = keep_best(candidates)

    # Output: each file written whole, then the partial files go
    summary = {**summarize(examples, candidates, rows), "wall_seconds": round(time.perf_counter() - started, 3)}
    write_outputs(output_dir, examples, candidates, rows, fmt, summary)
    for partial in partials:
        partial.remove()
    logger.info("wrote %d rows to %s: %s", len(rows), output_dir, json.dumps(summary))
    return summary


def parse(argv: Sequence[str] | None) -> tuple[DistillArguments, DataArguments, InferenceArguments, SamplingConfig,
                                                RewardConfig, FormatConfig]:
    return parse_command(argv, [DistillArguments, DataArguments, InferenceArguments, SamplingConfig, RewardConfig,
                                FormatConfig], "distill", __doc__.split("\n\n")[0],
                         defaults={"teacher_temperature": None})


def main(argv: Sequence[str] | None = None) -> int:
    setup_logging()
    run(*parse(argv))
    return 0
