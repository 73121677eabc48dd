"""``rlt score``: the RLT reward of every explanation in a dataset, and optionally the best of k.

    rlt score --teacher DIR --student DIR --dataset rows.jsonl --output_dir runs/scored [--keep_best true]

Input rows are any row rlt reads (:mod:`rlt.data`: a question and a solution) that also carries an
``explanation`` (a string) or ``explanations`` (a list). Every output row keeps its input fields and
adds ``reward`` and one field per reward term (lists, aligned with ``explanations``, for list rows).
With ``--keep_best``, the output has one row per question: the candidate with the highest reward among
all rows of that question, as ``explanation``, with its terms, plus ``candidates`` and ``candidate_rewards``.
With ``--reward_buckets N``, every explanation of every row is also pooled, ranked by reward and cut into N
parts of equal size, lowest first (``reward_bucket1.jsonl`` … ``reward_bucketN.jsonl``, student rows with
``reasoning_trace``, ``reward`` and the row's ``sources`` entry as ``source``; ``buckets.json`` sums them up):
students distilled from each show whether the reward ranks explanations as students learn from them.

Writes ``output_dir/scored.jsonl`` and the run record (:class:`ScoreOutputs`). Scores are
saved to ``scores.journal.jsonl`` as they are computed: a killed run started again with the same
arguments continues where it stopped, and a finished one asked for ``--keep_best`` or more rows scores
only what is new.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rlt.commands.arguments import DataArguments, InferenceArguments, overwrite_option, positive
from rlt.commands.parsing import parse_command, setup_logging
from rlt.data import DataError, RowRef, checked, normalize_record, read_json, read_jsonl, write_json, write_jsonl
from rlt.errors import UserError
from rlt.formats import STRATOS, TAG_STYLES, FormatConfig, SequenceBuilder, TagStyle
from rlt.jobs import Job, Journal, digest
from rlt.modeling import load_causal_lm, load_context_length, load_tokenizer
from rlt.progress import in_batches
from rlt.reward import RewardConfig, RewardTerms, RLTReward, check_same_tokenizer, fixed_tokens, scored_length
from rlt.run_folder import ROW_SELECTION, SPEED_ONLY, OutputFile, RunFolder, settings

logger = logging.getLogger(__name__)


@dataclass
class ScoreArguments:
    teacher: str = field(metadata={"help": "Teacher model: a local folder or a Hugging Face name."})
    student: str = field(metadata={"help": "Student model (frozen judge): a local folder or a Hugging Face name."})
    output_dir: str = field(metadata={"help": "Where the scored rows and the run record go."})
    keep_best: bool = field(default=False, metadata={"help": "Write one row per question: its best candidate."})
    reward_buckets: int | None = field(default=None, metadata={
        "help": "Also pool every explanation, rank by reward and write N equal parts, lowest first."})
    batch_size: int = field(default=64, metadata={"help": "Candidates scored per reward call."})
    overwrite: bool = overwrite_option()

    def __post_init__(self) -> None:
        positive(self, "batch_size", "reward_buckets")


@dataclass(frozen=True)
class ScoreOutputs:
    """The files of an ``rlt score`` run folder."""

    folder: Path
    scored = OutputFile("scored.jsonl")
    scores_journal = OutputFile("scores.journal.jsonl")
    buckets = OutputFile("buckets.json")

    def read_scored(self) -> list[dict]:
        return read_jsonl(self.scored)

    def bucket(self, number: int) -> Path:
        """``--reward_buckets``' part ``number`` (1: the lowest rewards)."""
        return self.folder / f"reward_bucket{number}.jsonl"

    def read_buckets(self) -> list[dict]:
        return read_json(self.buckets)


@dataclass(frozen=True)
class Candidate:
    row: int  # the row's place among the dataset's rows (RowRef.index)
    position: int | None  # in `explanations`, None for an `explanation` row
    question: str
    solution: str
    explanation: str

    @property
    def key(self) -> tuple[int, int | None, str]:
        """Its journal key, with a digest of its text: a score of a row since edited is not reused."""
        return self.row, self.position, digest(self.question, self.solution, self.explanation)


@dataclass(frozen=True)
class ScoreRow:
    """One input row: its fields as given and the explanation(s) it holds."""

    record: dict
    candidates: list[Candidate]


def score_row(record: dict, at: RowRef, tags: TagStyle = STRATOS) -> ScoreRow:
    """A row's question and solution (read as every command reads them) and its explanation(s)."""
    example = normalize_record(record, at, tags)
    if "explanations" in record:
        explanations = record["explanations"]
        if not isinstance(explanations, list) or not all(isinstance(e, str) for e in explanations):
            raise DataError.at(at, "'explanations' must be a list of strings", "explanations")
    elif isinstance(record.get("explanation"), str):
        explanations = [record["explanation"]]
    else:
        got = "missing" if record.get("explanation") is None else f"a {type(record['explanation']).__name__}"
        raise DataError.at(at, f"field 'explanation' must be a string, got {got} (or give 'explanations', a list)",
                           "explanation")
    position = (lambda i: i) if "explanations" in record else (lambda i: None)
    return ScoreRow(record, [Candidate(at.index, position(i), example.question, example.solution, e)
                             for i, e in enumerate(explanations)])


def _entry_key(entry: dict) -> Hashable:
    return tuple(entry["key"])


def score_candidates(reward: RLTReward, pending: Sequence[Candidate], journal: Journal, batch_size: int) -> None:
    """Score ``pending`` in batches, appending each batch's terms to ``journal``."""
    for batch, show in in_batches(pending, batch_size, "scoring"):
        terms = reward.score_texts([c.question for c in batch], [c.solution for c in batch],
                                   [c.explanation for c in batch])
        journal.append({"key": c.key, "terms": t.to_dict()} for c, t in zip(batch, terms))
        show(f"mean reward {sum(t.reward for t in terms) / len(terms):+.3f}")


def scored_rows(rows: Sequence[ScoreRow], terms: dict[Hashable, dict]) -> list[dict]:
    """Input rows with ``reward`` and every term added (lists for ``explanations`` rows)."""
    out = []
    for row in rows:
        per_candidate = [terms[c.key]["terms"] for c in row.candidates]
        if "explanations" in row.record:
            names = per_candidate[0] if per_candidate else RewardTerms.__dataclass_fields__
            out.append({**row.record, **{name: [t[name] for t in per_candidate] for name in names}})
        else:
            out.append({**row.record, **per_candidate[0]})
    return out


def best_rows(rows: Sequence[ScoreRow], terms: dict[Hashable, dict]) -> list[dict]:
    """One row per (question, solution): the candidate with the highest reward, first seen wins ties."""
    groups: dict[tuple[str, str], list[tuple[ScoreRow, Candidate]]] = {}
    for row in rows:
        for candidate in row.candidates:
            groups.setdefault((candidate.question, candidate.solution), []).append((row, candidate))
    out = []
    for group in groups.values():
        rewards = [terms[c.key]["terms"]["reward"] for _, c in group]
        row, best = group[max(range(len(group)), key=rewards.__getitem__)]
        record = {k: v for k, v in row.record.items() if k != "explanations"}
        out.append({**record, "explanation": best.explanation, **terms[best.key]["terms"],
                    "candidates": len(group), "candidate_rewards": rewards})
    return out


def reward_buckets(rows: Sequence[ScoreRow], terms: dict[Hashable, dict], count: int) -> list[list[dict]]:
    """Every candidate as a student row, ranked by reward (ties in input order) and cut into ``count`` parts
    whose sizes differ by one at most, lowest rewards first."""
    pool = []
    for row in rows:
        sources = row.record.get("sources")
        for i, candidate in enumerate(row.candidates):
            source = sources[i] if isinstance(sources, list) and i < len(sources) else None
            pool.append({"question": candidate.question, "solution": candidate.solution,
                         "reasoning_trace": candidate.explanation, "reward": terms[candidate.key]["terms"]["reward"],
                         "source": source})
    pool.sort(key=lambda item: item["reward"])
    bounds = [round(i * len(pool) / count) for i in range(count + 1)]
    return [pool[start:end] for start, end in zip(bounds, bounds[1:])]


def bucket_summary(bucket: Sequence[dict]) -> dict:
    """A part's size, its rewards' mean and range, and how many of its explanations come from each source."""
    rewards = [item["reward"] for item in bucket]
    return {"rows": len(bucket), "mean_reward": sum(rewards) / len(rewards) if rewards else None,
            "min_reward": min(rewards, default=None), "max_reward": max(rewards, default=None),
            "sources": dict(Counter(str(item["source"]) for item in bucket).most_common())}


def write_reward_buckets(outputs: ScoreOutputs, buckets: Sequence[Sequence[dict]]) -> None:
    """Write the parts and their summary, removing the parts of an earlier cut into more."""
    for stale in outputs.folder.glob("reward_bucket*.jsonl"):
        stale.unlink()
    for number, bucket in enumerate(buckets, start=1):
        write_jsonl(outputs.bucket(number), bucket)
    write_json(outputs.buckets, [{"bucket": number, "file": outputs.bucket(number).name, **bucket_summary(bucket)}
                                 for number, bucket in enumerate(buckets, start=1)])
    logger.info("wrote %d reward buckets of %s explanations to %s", len(buckets),
                "/".join(str(len(b)) for b in buckets), outputs.folder)


def run(args: ScoreArguments, data: DataArguments, inference: InferenceArguments, reward_config: RewardConfig,
        format_config: FormatConfig) -> list[dict]:
    outputs = ScoreOutputs(Path(args.output_dir))
    reward_config = reward_config.at_teacher_temperature()  # explanations rlt did not sample

    # Tokenizers: a student that cannot judge this teacher is refused before any weights load
    tokenizer, student_tokenizer = load_tokenizer(args.teacher, "teacher"), load_tokenizer(args.student, "student")
    check_same_tokenizer(tokenizer, student_tokenizer)
    builder = SequenceBuilder(tokenizer, format_config)
    max_length = scored_length(reward_config, load_context_length(args.teacher, "teacher"),
                               load_context_length(args.student, "student"))

    # Data: every row validated, its question and solution against the longest sequence scored
    def too_long(row: ScoreRow) -> str | None:
        tokens = fixed_tokens(builder, row.candidates[0].question, row.candidates[0].solution) if row.candidates else 0
        if max_length is not None and tokens >= max_length:
            return (f"the question and solution alone take {tokens} tokens, the models take {max_length}: "
                    "shorten the row or raise max_length")
        return None

    tags = TAG_STYLES[format_config.tag_format]
    rows = data.read(checked(lambda record, at: score_row(record, at, tags), too_long)).items
    candidates = [c for row in rows for c in row.candidates]
    logger.info("%d explanations to score", len(candidates))
    if args.reward_buckets and args.reward_buckets > len(candidates):
        raise UserError(f"reward_buckets {args.reward_buckets} is more than the {len(candidates)} explanations of "
                        f"{data.dataset}: every part needs one at least")

    # The run folder: scores are kept by the settings they depend on (--keep_best only shapes the output)
    work = {"scores": settings({"teacher": args.teacher, "student": args.student, "dataset": data.dataset},
                               ignore=SPEED_ONLY | ROW_SELECTION, data=data, inference=inference, reward=reward_config,
                               format=format_config)}
    shape = settings({"dataset": data.dataset}, data=data, keep_best=args.keep_best, reward_buckets=args.reward_buckets)
    expected = (outputs.scored, *((outputs.buckets,) if args.reward_buckets else ()))
    with RunFolder(outputs.folder, "score").claim(work, shape, overwrite=args.overwrite, expected=expected) as claim:
        if claim.finished:
            logger.info("%s holds these scores, finished: nothing to do (--overwrite true scores again)",
                        outputs.folder)
            return outputs.read_scored()
        claim.start(arguments=args, data=data, inference=inference, reward=reward_config, format=format_config)

        # Score what the journal lacks (models load only if something does)
        journal = Journal(outputs.scores_journal, claim.journal_fingerprint("scores"), _entry_key, "scores")

        def score(pending: Sequence[Candidate]) -> None:
            teacher = load_causal_lm(args.teacher, inference.dtype, inference.device, frozen=True, role="teacher")
            student = load_causal_lm(args.student, inference.dtype, inference.device, frozen=True, role="student")
            reward = RLTReward(teacher, student, tokenizer, reward_config, format_config)
            score_candidates(reward, pending, journal, args.batch_size)

        done = Job(journal, lambda c: [c.key]).run(candidates, score)
        scored = best_rows(rows, done) if args.keep_best else scored_rows(rows, done)
        write_jsonl(outputs.scored, scored)
        if args.reward_buckets:
            write_reward_buckets(outputs, reward_buckets(rows, done, args.reward_buckets))
        claim.finish()
    rewards = [done[c.key]["terms"]["reward"] for c in candidates]
    if rewards:
        logger.info("wrote %d rows to %s; mean reward %.4f over %d explanations",
                    len(scored), outputs.scored, sum(rewards) / len(rewards), len(rewards))
    return scored


def parse(argv: Sequence[str] | None) -> tuple[ScoreArguments, DataArguments, InferenceArguments, RewardConfig,
                                                FormatConfig]:
    return parse_command(argv, [ScoreArguments, DataArguments, InferenceArguments, RewardConfig, FormatConfig],
                         "score", __doc__.split("\n\n")[0])


def main(argv: Sequence[str] | None = None) -> int:
    setup_logging()
    run(*parse(argv))
    return 0
