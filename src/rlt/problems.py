"""Questions with reference answers: what ``rlt evaluate`` generates on and ``rlt student-rl`` rewards.

A row gives its question (``question``, ``prompt`` or ``problem``) and its reference answer
(:func:`rlt.answers.reference_answer`); a Bespoke-Stratos conversation its user turn and the answer of its
solution section; a Countdown row (``target`` + ``nums``) gives a stated question
and its puzzle as the reference (any right expression is right).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from rlt import countdown
from rlt.answers import reference_answer
from rlt.arguments import DataArguments
from rlt.data import CONVERSATION_KEYS, QUESTION_KEYS, DataError, normalize_record, read_records

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Problem:
    index: int  # 0-based position in the dataset (row - 1)
    question: str
    reference: str


def problem_of(record: dict, source: str, row: int) -> Problem:
    """The question and reference answer of one row; a :class:`DataError` names the row."""
    key = next((k for k in QUESTION_KEYS if record.get(k) is not None), None)
    try:
        if countdown.is_countdown_row(record):
            puzzle = countdown.puzzle_of(record)
            return Problem(row - 1, countdown.question(puzzle), str(puzzle))
        if key is None and any(record.get(k) is not None for k in CONVERSATION_KEYS):
            # Bespoke-Stratos conversations: the question and the answer of the solution section
            example = normalize_record(record, source=source, row=row)
            return Problem(row - 1, example.question, reference_answer({"solution": example.solution}))
        reference = reference_answer(record)
    except ValueError as error:
        raise DataError(source, str(error).removeprefix(f"{source} row {row}: "), row=row, field="answer") from None
    question = record.get(key) if key else None
    if not isinstance(question, str) or not question.strip():
        raise DataError(source, f"no question: expected a non-empty string in {', '.join(QUESTION_KEYS)} "
                                f"(fields: {', '.join(map(str, record))})", row=row, field=key or "question")
    return Problem(row - 1, question, reference)


def load_problems(data: DataArguments) -> list[Problem]:
    """Every row validated, before any model is loaded: a bad row fails the run at once (or, with
    ``on_error skip``, is left out and counted)."""
    problems, skipped = [], 0
    for row, record in read_records(data.dataset, data.split):
        try:
            problems.append(problem_of(record, data.dataset, row))
        except DataError:
            if data.on_error == "raise":
                raise
            skipped += 1
        if data.limit is not None and len(problems) >= data.limit:
            break
    if skipped:
        logger.warning("%s: skipped %d rows without a question or a reference answer", data.dataset, skipped)
    if not problems:
        raise DataError(data.dataset, "no rows with a question and a reference answer")
    return problems


__all__ = ["Problem", "load_problems", "problem_of"]
