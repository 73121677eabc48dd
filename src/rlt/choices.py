"""Multiple-choice questions (GPQA's schema) and the letter a model answers with.

A GPQA row (``Question``, ``Correct Answer``, ``Incorrect Answer 1`` to ``3``, as in the gated
``Idavidrein/gpqa`` release and its ``gpqa_diamond`` subset) becomes the question followed by its four
options lettered A to D, in SkyThought's layout (``Question\\nA) …, B) …, C) …, D) …``). The order is
drawn per question, the same for every model and run: ``[correct, incorrect 1, 2, 3]`` shuffled by
``random.Random(seed)`` where ``seed`` is the integer of the SHA-256 of the question's text. (SkyThought
shuffles with Python's global generator, so its orders change from run to run.)

:func:`extract_choice` reads the letter of a response, from its committed answer first:

1. the last complete solution section, else the whole response;
2. in it, the last ``\\boxed{…}``: a letter (``B``, ``(b)``, ``B.``), or an option's own text;
3. else the option letters it names: forms that cannot be prose (``(C)``, ``C)``, ``answer is C``,
   ``answer: c``) in any case, a capital standing alone otherwise (``A`` followed by a lower-case word is
   the article, not an option). A solution section naming two different letters (``A) or B)``) has no
   answer; in a response without one, the thinking may weigh several letters, and the last one counts.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

from rlt.answers import last_boxed
from rlt.formats import FormatConfig

LETTERS = "ABCD"
GPQA_KEYS = ("Question", "Correct Answer", "Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3")

_EXPLICIT = re.compile(r"\(([A-Da-d])\)|(?<![A-Za-z])([A-Da-d])\)|answer(?: is)?\s*[:=]?\s*\(?([A-Da-d])\b",
                       flags=re.IGNORECASE)
_CAPITAL = re.compile(r"(?<![A-Za-z])([A-D])(?![A-Za-z])(?!\s+[a-z])")
_BARE = re.compile(r"\(?([A-Da-d])\)?[.:]?")


@dataclass(frozen=True)
class ChoiceQuestion:
    """A multiple-choice question as the model sees it, its options in order, and the right letter."""

    text: str
    options: tuple[str, ...]
    answer: str


def is_choice_row(record: dict) -> bool:
    return all(isinstance(record.get(key), str) for key in GPQA_KEYS)


def choice_question(record: dict) -> ChoiceQuestion:
    """The lettered question of a GPQA row (see the module docstring for the order)."""
    question = record["Question"].strip()
    correct = record["Correct Answer"].strip()
    options = [correct, *(record[f"Incorrect Answer {i}"].strip() for i in (1, 2, 3))]
    if not question or not all(options):
        raise ValueError("a GPQA row needs a question and four non-empty answers")
    random.Random(int(hashlib.sha256(question.encode()).hexdigest(), 16)).shuffle(options)
    lettered = ", ".join(f"{letter}) {option}" for letter, option in zip(LETTERS, options))
    return ChoiceQuestion(f"{question}\n{lettered}", tuple(options), LETTERS[options.index(correct)])


def extract_choice(text: str, options: Sequence[str] = (), fmt: FormatConfig | None = None) -> str | None:
    """The option letter a response answers with (see the module docstring), or None."""
    fmt = fmt or FormatConfig()
    sections = re.findall(f"{re.escape(fmt.begin_solution)}(.*?){re.escape(fmt.end_solution)}", text, re.DOTALL)
    region = sections[-1] if sections else text
    boxed = last_boxed(region)
    if boxed is not None:
        return _single(boxed, options)
    named = _named_letters(region)
    if not named:
        return _option_text(region, options)
    if sections and len(set(named)) > 1:
        return None
    return named[-1]


def _single(answer: str, options: Sequence[str]) -> str | None:
    """One letter, or an option's text, as the whole of a boxed answer."""
    bare = _BARE.fullmatch(answer.strip())
    if bare:
        return bare.group(1).upper()
    return _option_text(answer, options)


def _option_text(answer: str, options: Sequence[str]) -> str | None:
    normalized = _normalize(answer)
    return next((letter for letter, option in zip(LETTERS, options) if normalized == _normalize(option)), None)


def _normalize(text: str) -> str:
    return " ".join(text.replace("$", "").split()).rstrip(".").lower()


def _named_letters(region: str) -> list[str]:
    """The option letters a text names, in order (explicit forms in any case, lone capitals)."""
    explicit = list(_EXPLICIT.finditer(region))
    found = [(match.start(), next(g for g in match.groups() if g).upper()) for match in explicit]
    found += [(match.start(1), match.group(1)) for match in _CAPITAL.finditer(region)
              if not any(e.start() <= match.start(1) < e.end() for e in explicit)]
    return [letter for _, letter in sorted(found)]


__all__ = ["GPQA_KEYS", "LETTERS", "ChoiceQuestion", "choice_question", "extract_choice", "is_choice_row"]
