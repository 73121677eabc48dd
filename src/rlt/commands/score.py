"""``rlt score``: the RLT reward of every explanation in a dataset, and optionally the best of k.

    rlt score --teacher DIR --student DIR --dataset rows.jsonl --output_dir runs/scored [--keep_best true]

Input rows carry ``question``, ``solution`` and ``explanation`` (a string) or ``explanations`` (a
list). Every output row keeps its input fields and adds ``reward`` and one field per reward term
(lists, aligned with ``explanations``, for list rows). With ``--keep_best``, the output has one row
per question: the candidate with the highest reward among all rows of that question, as
``explanation``, with its terms, plus ``candidates`` and ``candidate_rewards``.

Writes ``output_dir/scored.jsonl`` and ``output_dir/rlt_run.json``. Scores are appended to
``scored.partial.jsonl`` as they are computed; a killed run started again with the same arguments
continues where it stopped. (``--output FILE``, the old way to name the scored file, still works this
release, with a warning.)
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path

from rlt.arguments import DataArguments, InferenceArguments
from rlt.config import parse_command, setup_logging
from rlt.data import DataError, read_records, write_jsonl
from rlt.errors import UserError
from rlt.formats import FormatConfig
from rlt.modeling import load_causal_lm, load_tokenizer
from rlt.progress import progress_bar
from rlt.resume import PartialFile, settings_fingerprint
from rlt.reward import RewardConfig, RewardTerms, RLTReward, TooLongError, check_same_tokenizer
from rlt.run_info import write_run_info

logger = logging.getLogger(__name__)

SCORED = "scored.jsonl"


@dataclass
class ScoreArguments:
    teacher: str = field(metadata={"help": "Teacher model: a local folder or a Hugging Face name."})
    student: str = field(metadata={"help": "Student model (frozen judge): a local folder or a Hugging Face name."})
    output_dir: str | None = field(default=None, metadata={"help": "Where scored.jsonl and rlt_run.json go."})
    keep_best: bool = field(default=False, metadata={"help": "Write one row per question: its best candidate."})
    batch_size: int = field(default=64, metadata={"help": "Candidates scored per reward call."})
    output: str | None = field(default=None, metadata={
        "help": "Deprecated (use --output_dir): the scored file itself; its folder is then the output_dir."})

    def __post_init__(self) -> None:
        if self.output and not self.output_dir:
            logger.warning("--output is deprecated and goes in the next release: use --output_dir")
        elif not self.output_dir:
            raise UserError("the following arguments are required: --output_dir")

    @property
    def scored_file(self) -> Path:
        return Path(self.output) if self.output and not self.output_dir else Path(self.output_dir) / SCORED


@dataclass(frozen=True)
class Candidate:
    row: int  # 1-based row of the input file
    index: int | None  # position in `explanations`, None for an `explanation` row
    question: str
    solution: str
    explanation: str

    @property
    def key(self) -> str:
        return f"{self.row}:{self.index}"


def _text_field(record: dict, name: str, source: str, row: int) -> str:
    value = record.get(name)
    if not isinstance(value, str):
        got = "missing" if value is None else f"a {type(value).__name__}"
        raise DataError(source, f"field {name!r} must be a string, got {got} (fields: {', '.join(record)})",
                        row=row, field=name)
    return value


def candidates_of(record: dict, source: str, row: int) -> list[Candidate]:
    """The explanation(s) of one input row, validated."""
    question = _text_field(record, "question", source, row)
    solution = _text_field(record, "solution", source, row)
    if "explanations" in record:
        explanations = record["explanations"]
        if not isinstance(explanations, list) or not all(isinstance(e, str) for e in explanations):
            raise DataError(source, "'explanations' must be a list of strings", row=row, field="explanations")
        return [Candidate(row, i, question, solution, e) for i, e in enumerate(explanations)]
    return [Candidate(row, None, question, solution, _text_field(record, "explanation", source, row))]


def _fingerprint(args: ScoreArguments, data: DataArguments, inference: InferenceArguments, reward: RewardConfig,
                 fmt: FormatConfig) -> str:
    """What the scores depend on (:func:`rlt.resume.settings_fingerprint`)."""
    return settings_fingerprint({"teacher": args.teacher, "student": args.student, "dataset": data.dataset},
                                data=data, inference=inference, reward=reward, format=fmt)


def load_candidates(data: DataArguments) -> tuple[list[tuple[int, dict]], list[Candidate]]:
    """The rows kept (numbered as in the file) and their explanations, every row validated before any
    model is loaded; a bad row stops the run or, with ``on_error skip``, is left out and counted."""
    records, candidates, skipped = [], [], 0
    for row, record in read_records(data.dataset, data.split):
        try:
            candidates += candidates_of(record, data.dataset, row)
        except DataError:
            if data.on_error == "raise":
                raise
            skipped += 1
            continue
        records.append((row, record))
        if data.limit is not None and len(records) >= data.limit:
            break
    logger.info("%s: %d rows, %d explanations%s", data.dataset, len(records), len(candidates),
                f", skipped {skipped} bad rows" if skipped else "")
    if not records:
        raise DataError(data.dataset, "no rows to score")
    return records, candidates


def _saved_terms(partial: PartialFile) -> dict[str, dict]:
    """Terms by candidate key, of every candidate scored so far (by this run or a killed one)."""
    return {key: entry["terms"] for key, entry in partial.load().items()}


def score_candidates(
    reward: RLTReward, pending: Sequence[Candidate], partial: PartialFile, batch_size: int, source: str
) -> None:
    """Score ``pending`` in batches, appending each batch's terms to ``partial``."""
    with progress_bar("scoring", total=len(pending)) as bar:
        for start in range(0, len(pending), batch_size):
            batch = pending[start:start + batch_size]
            try:
                terms = reward.score_texts([c.question for c in batch], [c.solution for c in batch],
                                           [c.explanation for c in batch])
            except TooLongError as error:
                raise DataError(source, error.problem, row=batch[error.index].row) from None
            partial.append({"key": c.key, "terms": t.to_dict()} for c, t in zip(batch, terms))
            bar.advance(0, len(batch))
            bar.update(0, status=f"mean reward {sum(t.reward for t in terms) / len(terms):+.3f}")


def scored_rows(records: list[tuple[int, dict]], terms: dict[str, dict]) -> list[dict]:
    """Input rows with ``reward`` and every term added (lists for ``explanations`` rows)."""
    out = []
    for row, record in records:
        if "explanations" in record:
            per_candidate = [terms[f"{row}:{i}"] for i in range(len(record["explanations"]))]
            names = per_candidate[0] if per_candidate else RewardTerms.__dataclass_fields__
            out.append({**record, **{name: [t[name] for t in per_candidate] for name in names}})
        else:
            out.append({**record, **terms[f"{row}:None"]})
    return out


def best_rows(records: list[tuple[int, dict]], candidates: list[Candidate], terms: dict[str, dict]) -> list[dict]:
    """One row per (question, solution): the candidate with the highest reward, first seen wins ties."""
    by_row = dict(records)
    groups: dict[tuple[str, str], list[Candidate]] = {}
    for candidate in candidates:
        groups.setdefault((candidate.question, candidate.solution), []).append(candidate)
    out = []
    for group in groups.values():
        rewards = [terms[c.key]["reward"] for c in group]
        best = group[max(range(len(group)), key=rewards.__getitem__)]
        record = {k: v for k, v in by_row[best.row].items() if k != "explanations"}
        out.append({**record, "explanation": best.explanation, **terms[best.key],
                    "candidates": len(group), "candidate_rewards": rewards})
    return out


def run(args: ScoreArguments, data: DataArguments, inference: InferenceArguments, reward_config: RewardConfig,
        format_config: FormatConfig) -> list[dict]:
    output = args.scored_file

    # Data: every row validated before any model is loaded
    records, candidates = load_candidates(data)

    # Tokenizers: a student that cannot judge this teacher is refused before any weights load
    tokenizer, student_tokenizer = load_tokenizer(args.teacher, "teacher"), load_tokenizer(args.student, "student")
    check_same_tokenizer(tokenizer, student_tokenizer)
    write_run_info(output.parent, "score", arguments=args, data=data, inference=inference, reward=reward_config,
                   format=format_config)

    # Resume: skip what a killed run already scored
    partial = PartialFile(output.with_suffix(".partial.jsonl"),
                          _fingerprint(args, data, inference, reward_config, format_config), itemgetter("key"),
                          "scores")
    done = _saved_terms(partial)
    pending = [c for c in candidates if c.key not in done]
    if done:
        logger.info("resuming: %d explanations already scored, %d to go", len(done), len(pending))

    # Models
    if pending:
        teacher = load_causal_lm(args.teacher, inference.dtype, inference.device, frozen=True, role="teacher")
        student = load_causal_lm(args.student, inference.dtype, inference.device, frozen=True, role="student")
        reward = RLTReward(teacher, student, tokenizer, reward_config, format_config)
        score_candidates(reward, pending, partial, args.batch_size, data.dataset)
        done = _saved_terms(partial)

    # Output, written whole, then the partial file goes
    rows = best_rows(records, candidates, done) if args.keep_best else scored_rows(records, done)
    write_jsonl(output, rows)
    partial.remove()
    rewards = [done[c.key]["reward"] for c in candidates]
    if rewards:
        logger.info("wrote %d rows to %s; mean reward %.4f over %d explanations",
                    len(rows), output, sum(rewards) / len(rewards), len(rewards))
    return rows


def parse(argv: Sequence[str] | None) -> tuple[ScoreArguments, DataArguments, InferenceArguments, RewardConfig,
                                                FormatConfig]:
    return parse_command(argv, [ScoreArguments, DataArguments, InferenceArguments, RewardConfig, FormatConfig],
                         "score", __doc__.split("\n\n")[0], renamed={"--input": "--dataset"})


def main(argv: Sequence[str] | None = None) -> int:
    setup_logging()
    run(*parse(argv))
    return 0
