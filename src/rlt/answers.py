"""Final answers of model outputs and benchmark rows, and whether two answers agree.

:func:`extract_answer` reads a model output in this order; the first step that finds something decides:

1. the **last complete solution section** (the begin/end solution tags of a :class:`FormatConfig`,
   Stratos by default): within it, the last ``\\boxed{…}`` / ``\\fbox{…}`` (balanced braces), else the
   ``#### n`` value, else the whole section, stripped. A student that closed its solution committed to
   it, so nothing in its thought can override it;
2. without a complete solution section (an untagged or truncated output): the last ``\\boxed{…}`` of the
   whole text, else its ``#### n`` value, else None. The whole text is never taken as the answer: a
   truncated trace has no answer, and counting its last line as one would inflate pass@1 by luck.

This reading stays by hand rather than math-verify's ``parse(text, extraction_config=[...])``: the answer
is a string for every match mode (exact, Countdown and choice need it as written, not math-verify's
normalised form); math-verify knows no solution section or ``#### n`` line; and, unanchored, it reads the
last number of prose, which step 2 refuses. A section without a box is where math-verify's extraction
does the job: :func:`answers_match` hands the whole section to it.

:func:`answers_match` compares with `math-verify <https://github.com/huggingface/Math-Verify>`_
(``\\frac{1}{2}`` = ``0.5``, ``(3, \\pi/2)`` = ``\\left( 3, \\frac{\\pi}{2} \\right)``, intervals, sets…)
or, for the toy task, exactly.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Literal

from rlt.countdown import Puzzle, is_countdown_row, puzzle_of
from rlt.countdown import check as check_countdown
from rlt.formats import FormatConfig

logger = logging.getLogger(__name__)

MatchMode = Literal["math", "exact", "countdown", "choice"]
MATCH_MODES = ("math", "exact", "countdown", "choice")

_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")
_FINAL_ANSWER = re.compile(r"^[ \t]*####[ \t]*(\S[^\n]*?)[ \t]*$", flags=re.MULTILINE)
_THOUSANDS = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_INTEGER = re.compile(r"[+-]?\d+")
_MATH_DELIMITER = re.compile(r"(?<!\\)\$|\\\(|\\\[")  # $ (but not \$, a dollar sign), \( or \[
# math-verify's own limit per parse/verify call; its timer is SIGALRM, usable only in the main thread.
_MATH_VERIFY_TIMEOUT_S = 5


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{…}`` or ``\\fbox{…}`` whose braces close (nested braces kept;
    escaped ones, ``\\{`` and ``\\}``, do not count).

    By hand, because math-verify's boxed extraction (``LatexExtractionConfig``, then
    ``extract_boxed_content``) gets these wrong, measured with math-verify 0.9.0: it counts escaped braces
    (``\\boxed{x \\in \\{1\\}} then \\boxed{\\}`` → ``x \\in \\{1\\},\\``), takes an unclosed last box to
    the end of the text (a truncated ``\\boxed{4} and \\boxed{\\frac{1}{`` → ``{\\frac{1}``), misses
    ``\\boxed {x}``, and joins nearby boxes into one answer (``\\boxed{1} or rather \\fbox{2}`` → ``1,2``).
    On the real files (Sky-T1 solution sections, MATH-500 and AIME solutions) its verdicts are the same
    as this function's followed by :func:`answers_match`, except AIME's ``\\textbf{(073)}`` (see
    :func:`_tidy`), so it would buy nothing."""
    for match in reversed(list(_BOXED.finditer(text))):
        depth, position = 1, match.end()
        while position < len(text):
            char = text[position]
            depth += {"{": 1, "}": -1}.get(char, 0)
            if depth == 0:
                return text[match.end():position].strip()
            position += 2 if char == "\\" else 1
    return None


def final_answer_line(text: str) -> str | None:
    """The value of the last ``#### n`` line (GSM8K), thousands separators removed (``1,234`` → ``1234``).

    By hand: math-verify has no ``####`` anchor. Its ``ExprExtractionConfig`` takes the last number of the
    text, which on GSM8K's test answers is another number than the ``####`` one in 4 of 1,319 (``28 days /
    7 days/week = <<28/7=4>>4 weeks``, then ``#### 4`` → 28); anchored (``try_extract_without_anchor=False``)
    it reads nothing in 1,312."""
    values = _FINAL_ANSWER.findall(text)
    if not values:
        return None
    value = values[-1]
    return value.replace(",", "") if _THOUSANDS.fullmatch(value) else value


def extract_answer(text: str, fmt: FormatConfig | None = None) -> str | None:
    """The final answer of a model output (see the module docstring for the order), or None."""
    fmt = fmt or FormatConfig()
    begin, end = re.escape(fmt.begin_solution), re.escape(fmt.end_solution)
    sections = re.findall(f"{begin}(.*?){end}", text, flags=re.DOTALL)
    if sections:
        section = sections[-1]
        return last_boxed(section) or final_answer_line(section) or section.strip() or None
    return last_boxed(text) or final_answer_line(text)


def reference_answer(row: dict) -> str:
    """The gold answer of a benchmark row, from the first field that has one:

    a Countdown row's puzzle (``"24 from [3, 4, 5, 6]"``: any right expression is right), else
    ``answer`` (MATH-500, AIME24, Sky-T1 rows; the ``#### n`` value when it is a GSM8K worked answer),
    else ``solution``: its last ``\\boxed{}``, else its ``#### n`` value, else the solution itself when it
    is one line (a bare answer, as in the toy task). A multi-line solution without either is an error
    rather than a guess: comparing predictions with a whole worked solution would score noise.
    """
    if is_countdown_row(row):
        return str(puzzle_of(row))
    answer = row.get("answer")
    if answer is not None and str(answer).strip():
        return final_answer_line(str(answer)) or str(answer).strip()
    solution = row.get("solution")
    if isinstance(solution, str) and solution.strip():
        found = last_boxed(solution) or final_answer_line(solution)
        if found:
            return found
        if "\n" not in solution.strip():
            return solution.strip()
    raise ValueError("no reference answer: no 'answer' field, and 'solution' is missing or has no \\boxed{} "
                     "or '#### n' answer")


def answers_match(predicted: str | None, reference: str, mode: MatchMode = "math") -> bool:
    """Whether ``predicted`` is ``reference``: by math-verify (``"math"``), exactly (``"exact"``: equal
    integers, or equal strings after stripping; the toy task), as a Countdown expression (``"countdown"``:
    the reference is the puzzle, :func:`rlt.countdown.check`), or as an option letter (``"choice"``). A
    missing prediction never matches."""
    if predicted is None:
        return False
    predicted, reference = predicted.strip(), reference.strip()
    if mode == "choice":
        return predicted.upper() == reference.upper()
    if mode == "countdown":
        return check_countdown(predicted, Puzzle.parse(reference))
    if mode == "exact":
        if _INTEGER.fullmatch(predicted) and _INTEGER.fullmatch(reference):
            return int(predicted) == int(reference)
        return predicted == reference
    if mode != "math":
        raise ValueError(f"mode must be one of {', '.join(MATCH_MODES)}, got {mode!r}")
    predicted = _tidy(predicted)
    return predicted == reference or _math_verify(predicted, reference)


_BOLD = re.compile(r"^\\(?:textbf|mathbf)\{(.*)\}$", flags=re.DOTALL)


def _tidy(answer: str) -> str:
    """An answer without the wrapping math-verify does not see through (found on AIME 2024's own
    solutions, benchmarks/answer_checks.py; measured with math-verify 0.9.0):

    - a closing sentence period: it parses ``\\boxed{104.}`` to nothing and ``\\boxed{(3, 4).}`` to 4;
    - bold, AoPS's style: it reads ``\\textbf{127}`` as 127 but turns ``\\textbf{(073)}`` into the
      text ``(073)``, a symbol. Unbolded, ``(073)`` is 73 to math-verify itself."""
    answer = answer.removesuffix(".").strip()
    bold = _BOLD.match(answer)
    return bold.group(1).strip() if bold else answer


def _as_latex(answer: str) -> str:
    """What math-verify's parser expects: a bare expression boxed (its ``LatexExtractionConfig`` finds
    LaTeX only inside a box or math delimiters); text with its own math delimiters (a whole solution
    section without a box) left as it is, for math-verify's extraction to find the answer in."""
    if _MATH_DELIMITER.search(answer) or "\n" in answer:
        return answer
    return f"\\boxed{{{answer}}}"


def _math_verify(predicted: str, reference: str) -> bool:
    """math-verify's verdict; False on its errors and timeouts. Its timer uses SIGALRM, which only the
    main thread may set, so elsewhere (a data loader, a server thread) it runs without one."""
    from math_verify import parse, verify  # imports sympy: slow, and only this mode needs it

    timeout = _MATH_VERIFY_TIMEOUT_S if threading.current_thread() is threading.main_thread() else None
    try:
        gold = parse(_as_latex(reference), parsing_timeout=timeout)
        guess = parse(_as_latex(predicted), parsing_timeout=timeout)
        return bool(gold and guess and verify(gold, guess, timeout_seconds=timeout))
    except Exception as error:  # math-verify's own exceptions and sympy's, whatever the input
        logger.debug("math-verify failed on %r vs %r: %s", predicted, reference, error)
        return False


__all__ = ["MATCH_MODES", "MatchMode", "answers_match", "extract_answer", "final_answer_line", "last_boxed",
           "reference_answer"]
