"""Questions with reference answers: what ``rlt evaluate`` generates on and ``rlt student-rl`` rewards.

A row gives its question (``question``, ``prompt`` or ``problem``) and its reference answer
(:func:`rlt.answers.reference_answer`); a Bespoke-Stratos conversation its user turn and the answer of its
solution section; a Countdown row (``target`` + ``nums``) gives a stated question
and its puzzle as the reference (any right expression is right); a GPQA row (``Question``, ``Correct
Answer``, ``Incorrect Answer 1..3``) its question with lettered options and the right letter
(:mod:`rlt.choices`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from rlt import countdown
from rlt.answers import MatchMode, extract_answer, reference_answer
from rlt.choices import choice_question, extract_choice, is_choice_row
from rlt.data import CONVERSATION_KEYS, QUESTION_KEYS, DataError, RowRef, Rows, load_rows, normalize_record
from rlt.formats import FormatConfig


@dataclass(frozen=True)
class Problem:
    index: int  # 0-based position among the source's rows (RowRef.index)
    question: str
    reference: str
    options: tuple[str, ...] = ()  # a multiple-choice question's, in letter order


def prediction(text: str, fmt: FormatConfig, match: MatchMode, options: Sequence[str] = ()) -> str | None:
    """The answer a response gives, read as its match mode needs: an option letter for multiple choice
    (:func:`rlt.choices.extract_choice`), else its final answer (:func:`rlt.answers.extract_answer`)."""
    return extract_choice(text, options, fmt) if match == "choice" else extract_answer(text, fmt)


def problem_of(record: dict, at: RowRef) -> Problem:
    """The question and reference answer of one row; a :class:`DataError` names the row."""
    key = next((k for k in QUESTION_KEYS if record.get(k) is not None), None)
    try:
        if is_choice_row(record):
            choice = choice_question(record)
            return Problem(at.index, choice.text, choice.answer, choice.options)
        if countdown.is_countdown_row(record):
            puzzle = countdown.puzzle_of(record)
            return Problem(at.index, countdown.question(puzzle), str(puzzle))
        if key is None and any(record.get(k) is not None for k in CONVERSATION_KEYS):
            # Bespoke-Stratos conversations: the question and the answer of the solution section
            example = normalize_record(record, at)
            return Problem(at.index, example.question, reference_answer({"solution": example.solution}))
        reference = reference_answer(record)
    except DataError:
        raise
    except ValueError as error:
        raise DataError.at(at, str(error), "answer") from None
    question = record.get(key) if key else None
    if not isinstance(question, str) or not question.strip():
        raise DataError.at(at, f"no question: expected a non-empty string in {', '.join(QUESTION_KEYS)} "
                               f"(fields: {', '.join(map(str, record))})", key or "question")
    return Problem(at.index, question, reference)


def load_problems(source: str | Path, split: str | None = None, *, on_error: Literal["raise", "skip"] = "raise",
                  limit: int | None = None) -> Rows[Problem]:
    """Every row validated (:func:`rlt.data.load_rows` with :func:`problem_of`)."""
    return load_rows(source, problem_of, split, on_error=on_error, limit=limit)


__all__ = ["Problem", "load_problems", "prediction", "problem_of"]
