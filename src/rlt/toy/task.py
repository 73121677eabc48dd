"""The toy world's task: multi-operand addition (or, for transfer, additions and subtractions in the same frame),
with explanations of graded quality.

A question is ``What is 47+38+26?``, its solution ``111`` and its gold explanation the running sums,
``47+38=85, 85+26=111``. Operands are signed: ``What is 47+38-26?`` is ``[47, 38, -26]``, explained
``47+38=85, 85-26=59``, so a subtraction is one more running sum and every rule below holds for both.
Because the right explanation is known exactly, the RLT reward can be checked against ground truth:
explanations made worse in known ways (:data:`CORRUPTIONS`) should score below the gold one, and an
explanation's kind can be recovered from its text (:func:`explanation_kind`).

Examples are plain :class:`rlt.data.Example` rows, so every command reads them like real data; the
operands are parsed back from the question by :func:`numbers_of` when code needs them.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rlt.data import Example

GOLD = "gold"
OTHER = "other"
CORRUPTIONS: tuple[str, ...] = (
    "wrong_intermediate", "skipped_step", "shuffled_steps", "filler", "empty", "restated_answer", "unfinished",
    "answer_first",
)
# Words a rambling explanation adds; none holds a digit, '=', '+' or '-', so they never read as a step.
FILLER_PHRASES: tuple[str, ...] = ("let me think", "hmm", "wait", "ok so", "right")
STEP_SEPARATOR = ", "

OPERATORS = "+-"
_QUESTION = re.compile(r"What is (\d+(?:[+-]\d+)+)\?")
_STEP = re.compile(r"(\d+)([+-])(\d+)=(\d+)")


def expression(numbers: Sequence[int]) -> str:
    """Signed operands written as they are read: ``[47, 38, -26]`` is ``47+38-26``."""
    return str(numbers[0]) + "".join(f"{'-' if n < 0 else '+'}{abs(n)}" for n in numbers[1:])


def step(numbers: Sequence[int], result: int) -> str:
    """One step of an explanation, ``85-26=59``: an expression and the result written for it."""
    return f"{expression(numbers)}={result}"


# Questions, solutions and gold explanations --------------------------------------------------------


def question(numbers: Sequence[int]) -> str:
    """``What is 47+38+26?`` (``What is 47+38-26?`` for ``[47, 38, -26]``)"""
    return f"What is {expression(numbers)}?"


def solution(numbers: Sequence[int]) -> str:
    """The value as a bare integer: the reward scores the student's log-probability of exactly this."""
    return str(sum(numbers))


def numbers_of(question_text: str) -> list[int]:
    """The signed operands of a question written by :func:`question` (the inverse of it)."""
    match = _QUESTION.fullmatch(question_text)
    if match is None:
        raise ValueError(f"not a question of the toy task: {question_text!r}")
    return [int(n) for n in re.findall(r"[+-]?\d+", match.group(1))]


def _running_sums(numbers: Sequence[int]) -> list[int]:
    sums = [numbers[0]]
    for n in numbers[1:]:
        sums.append(sums[-1] + n)
    return sums


def _gold_steps(numbers: Sequence[int]) -> list[str]:
    _check_numbers(numbers)
    sums = _running_sums(numbers)
    return [step([sums[i], numbers[i + 1]], sums[i + 1]) for i in range(len(numbers) - 1)]


def gold_explanation(numbers: Sequence[int]) -> str:
    """One step per operation, each starting from the previous running sum: ``47+38=85, 85+26=111``."""
    return STEP_SEPARATOR.join(_gold_steps(numbers))


def _check_numbers(numbers: Sequence[int]) -> None:
    if len(numbers) < 2 or numbers[0] < 0 or any(total < 0 for total in _running_sums(numbers)):
        raise ValueError(f"a question needs at least two operands, the first non-negative, and no running sum "
                         f"below zero, got {list(numbers)}")


# The task and its splits ---------------------------------------------------------------------------


@dataclass
class AdditionTask:
    """Sums of ``operands`` integers drawn from ``[low, high]``; ``seed`` fixes the splits.

    ``operators`` are the signs between the operands, one per gap (``"+-"``: ``a+b-c``) or one for all
    (``"+"``, the default); no question may go below zero on the way (``"+-"`` needs ``2·low ≥ high``).

    Questions are ordered operand tuples: ``47+38+26`` and ``26+38+47`` are different questions (their
    gold explanations differ) and may fall on different sides of the train/held-out split. Distinctness
    and the no-overlap guarantee are about exact question strings.
    """

    operands: int = 3
    low: int = 50
    high: int = 99
    seed: int = 0
    operators: str = "+"

    def __post_init__(self) -> None:
        if self.operands < 2:
            raise ValueError(f"operands must be at least 2, got {self.operands}")
        if not 0 <= self.low <= self.high:
            raise ValueError(f"need 0 <= low <= high, got low={self.low}, high={self.high}")
        if set(self.operators) - set(OPERATORS) or len(self.operators) not in (1, self.operands - 1):
            raise ValueError(f"operators must be '+' or '-', one for all or one per gap ({self.operands - 1}), "
                             f"got {self.operators!r}")
        lowest = self.low
        for sign in self.signs:
            lowest += self.low if sign > 0 else -self.high
            if lowest < 0:
                raise ValueError(f"operators {self.operators!r} on operands from {self.low} to {self.high} can go "
                                 "below zero; raise low or lower high")

    @property
    def signs(self) -> list[int]:
        """+1 or -1 for each operand after the first."""
        operators = self.operators * (self.operands - 1) if len(self.operators) == 1 else self.operators
        return [1 if operator == "+" else -1 for operator in operators]

    @property
    def num_questions(self) -> int:
        """How many distinct questions the task has."""
        return (self.high - self.low + 1) ** self.operands

    def _numbers(self, index: int) -> list[int]:
        """The operands of question number ``index`` (mixed radix, first operand most significant)."""
        base = self.high - self.low + 1
        digits = []
        for _ in range(self.operands):
            index, digit = divmod(index, base)
            digits.append(self.low + digit)
        first, *rest = digits[::-1]
        return [first, *(sign * n for sign, n in zip(self.signs, rest))]

    def check_split_sizes(self, n_train: int, n_heldout: int) -> None:
        """Refuse split sizes the task cannot give (negative, or more distinct questions than it has)."""
        if n_train < 0 or n_heldout < 0:
            raise ValueError(f"split sizes must be non-negative, got n_train={n_train}, n_heldout={n_heldout}")
        wanted = n_train + n_heldout
        if wanted > self.num_questions:
            raise ValueError(
                f"asked for {n_train} train + {n_heldout} held-out = {wanted} distinct questions, but "
                f"{self.operands} operands in [{self.low}, {self.high}] give only {self.num_questions}"
            )

    def splits(self, n_train: int, n_heldout: int) -> tuple[list[Example], list[Example]]:
        """``n_train`` and ``n_heldout`` examples with distinct questions, none shared between the two.

        Deterministic given ``seed``. The held-out questions are drawn first, so the held-out split
        stays the same when only ``n_train`` changes (as long as both splits together take at most half
        of :attr:`num_questions`): runs with different training sizes are evaluated on the same questions.
        """
        self.check_split_sizes(n_train, n_heldout)
        indices = _distinct_indices(random.Random(self.seed), self.num_questions, n_train + n_heldout)
        examples = [self._example(self._numbers(i)) for i in indices]
        return examples[n_heldout:], examples[:n_heldout]

    @staticmethod
    def _example(numbers: list[int]) -> Example:
        return Example(question(numbers), solution(numbers), gold_explanation(numbers))


def _distinct_indices(rng: random.Random, total: int, k: int) -> list[int]:
    """``k`` distinct integers of ``range(total)`` in random order.

    Rejection sampling makes the first draws independent of ``k`` (what keeps the held-out split fixed
    when the training split grows) and works for totals beyond ``sys.maxsize``, where ``random.sample``
    cannot take the range; when ``k`` is more than half of ``total`` (small tasks), rejections would
    dominate and ``random.sample`` over the (then small) range is used instead.
    """
    if 2 * k > total:
        return rng.sample(range(total), k)
    chosen: dict[int, None] = {}
    while len(chosen) < k:
        chosen[rng.randrange(total)] = None
    return list(chosen)


# Corrupted explanations ----------------------------------------------------------------------------


def _wrong_intermediate(numbers: Sequence[int], rng: random.Random) -> str:
    """One step's sum is off by 1..9 and the slip is carried on: every later step adds correctly to
    the wrong value, so exactly one step is wrong and the text ends on a wrong total, as a real
    reasoner's arithmetic slip would. (With two operands the only sum is the total.)"""
    sums = _running_sums(numbers)
    wrong_step = rng.randrange(len(numbers) - 1)
    delta = rng.choice([-1, 1]) * rng.randint(1, 9)
    if min(sums[wrong_step + 1:]) + delta < 0:  # every later sum stays non-negative, so each step reads as one
        delta = -delta
    steps, total = [], numbers[0]
    for i, n in enumerate(numbers[1:]):
        result = total + n + (delta if i == wrong_step else 0)
        steps.append(step([total, n], result))
        total = result
    return STEP_SEPARATOR.join(steps)


def _skipped_steps_variants(numbers: Sequence[int]) -> list[str]:
    """Every way of leaving out one running sum: two consecutive steps merged into one,
    ``47+38+26=111``. With two operands there is no running sum to leave out, so the whole step is
    skipped and only its result remains (``85``)."""
    if len(numbers) == 2:
        return [solution(numbers)]
    sums = _running_sums(numbers)
    steps = _gold_steps(numbers)
    return [
        STEP_SEPARATOR.join([*steps[:i], step([sums[i], numbers[i + 1], numbers[i + 2]], sums[i + 2]),
                             *steps[i + 2:]])
        for i in range(len(numbers) - 2)
    ]


def _swapped_sides(numbers: Sequence[int]) -> str:
    """The gold explanation with the first step written result first (``85=47+38``)."""
    first, *rest = _gold_steps(numbers)
    left, right = first.split("=")
    return STEP_SEPARATOR.join([f"{right}={left}", *rest])


def _shuffled_steps(numbers: Sequence[int], rng: random.Random) -> str:
    """The gold steps in another order. When no reordering changes the text (a single step, or all
    steps identical, as in ``5+0=5, 5+0=5``), the first step's sides are swapped instead."""
    steps = _gold_steps(numbers)
    if len(set(steps)) == 1:
        return _swapped_sides(numbers)
    shuffled = list(steps)
    while shuffled == steps:
        rng.shuffle(shuffled)
    return STEP_SEPARATOR.join(shuffled)


def _filler(numbers: Sequence[int], rng: random.Random) -> str:
    """The gold steps with one to three filler phrases inserted at one place (start, between, end)."""
    pieces = _gold_steps(numbers)
    at = rng.randint(0, len(pieces))
    filler = [rng.choice(FILLER_PHRASES) for _ in range(rng.randint(1, 3))]
    return STEP_SEPARATOR.join([*pieces[:at], *filler, *pieces[at:]])


def _unfinished(numbers: Sequence[int]) -> str:
    """The gold explanation stopping one step short of the total (``47+38=85``): the reader is left to do
    the last addition unaided. With two operands the only step is set up but not done (``47+38``)."""
    steps = _gold_steps(numbers)
    if len(steps) == 1:
        return steps[0].split("=")[0]
    return STEP_SEPARATOR.join(steps[:-1])


def _restated_answer(numbers: Sequence[int]) -> str:
    return f"The answer is {solution(numbers)}."


def _answer_first(numbers: Sequence[int]) -> str:
    """The answer stated before the gold working (``The answer is 111. 47+38=85, 85+26=111``): natural to
    a teacher that is shown the solution, but a student taught by it must say the total before adding."""
    return f"{_restated_answer(numbers)} {gold_explanation(numbers)}"


def corrupt(numbers: Sequence[int], kind: str, rng: random.Random) -> str:
    """An explanation of ``numbers`` made worse in the way ``kind`` names (one of :data:`CORRUPTIONS`).

    Never equal to :func:`gold_explanation` and always recognised by :func:`explanation_kind` as
    ``kind``; the choices made at random (which step, which order, which filler) come from ``rng``.
    """
    _check_numbers(numbers)
    if kind == "wrong_intermediate":
        return _wrong_intermediate(numbers, rng)
    if kind == "skipped_step":
        return rng.choice(_skipped_steps_variants(numbers))
    if kind == "shuffled_steps":
        return _shuffled_steps(numbers, rng)
    if kind == "filler":
        return _filler(numbers, rng)
    if kind == "empty":
        return ""
    if kind == "restated_answer":
        return _restated_answer(numbers)
    if kind == "unfinished":
        return _unfinished(numbers)
    if kind == "answer_first":
        return _answer_first(numbers)
    raise ValueError(f"unknown corruption {kind!r}: use one of {', '.join(CORRUPTIONS)}")


def _is_wrong_intermediate(numbers: Sequence[int], pieces: list[str]) -> bool:
    """A chain of steps over the right operands, each starting from the previous step's written
    result, with exactly one step whose sum is wrong."""
    if len(pieces) != len(numbers) - 1:
        return False
    total, wrong = numbers[0], 0
    for piece, n in zip(pieces, numbers[1:]):
        match = _STEP.fullmatch(piece)
        if match is None or piece.split("=")[0] != expression([total, n]):
            return False
        total = int(match[4])
        wrong += total != int(match[1]) + n
    return wrong == 1


def explanation_kind(numbers: Sequence[int], explanation: str) -> str:
    """``"gold"``, the corruption :func:`corrupt` would have written it as, or ``"other"``.

    It recognises the exact forms this module writes, not paraphrases: a tool to check the toy data
    and to label explanations in reward experiments, not a grader of free text.
    """
    gold_steps = _gold_steps(numbers)
    pieces = explanation.split(STEP_SEPARATOR)
    if pieces == gold_steps:
        return GOLD
    if explanation == "":
        return "empty"
    if explanation == _restated_answer(numbers):
        return "restated_answer"
    if explanation == _answer_first(numbers):
        return "answer_first"
    steps = [p for p in pieces if p not in FILLER_PHRASES]
    if steps == gold_steps:
        return "filler"
    reorderable = len(set(gold_steps)) > 1
    if sorted(pieces) == sorted(gold_steps) or (not reorderable and explanation == _swapped_sides(numbers)):
        return "shuffled_steps"
    if explanation in _skipped_steps_variants(numbers):
        return "skipped_step"
    if explanation == _unfinished(numbers):
        return "unfinished"
    if _is_wrong_intermediate(numbers, pieces):
        return "wrong_intermediate"
    return OTHER


# Rows for training ---------------------------------------------------------------------------------


def teacher_warmup_rows(
    examples: Sequence[Example], mix: Mapping[str, float], *, rng: random.Random | int = 0
) -> list[dict]:
    """Rows for the teacher's SFT warm-up: an imperfect teacher, so that RL has something to fix.

    ``mix`` maps each explanation kind (``"gold"`` or one of :data:`CORRUPTIONS`) to the share of rows
    that get it; shares are normalised, and the counts are exact (largest remainders), spread over the
    rows at random. Each row says its ``kind``. An int ``rng`` seeds a fresh generator, so the rows are
    deterministic given it.
    """
    unknown = set(mix) - {GOLD, *CORRUPTIONS}
    if unknown or not mix or any(share < 0 for share in mix.values()) or sum(mix.values()) <= 0:
        raise ValueError(f"mix must give non-negative shares, not all zero, to kinds among "
                         f"{', '.join((GOLD, *CORRUPTIONS))}; got {dict(mix)}")
    rng = random.Random(rng) if isinstance(rng, int) else rng
    kinds = _exact_counts(mix, len(examples))
    rng.shuffle(kinds)
    rows = []
    for example, kind in zip(examples, kinds):
        numbers = numbers_of(example.question)
        trace = gold_explanation(numbers) if kind == GOLD else corrupt(numbers, kind, rng)
        rows.append({"question": example.question, "solution": example.solution,
                     "reasoning_trace": trace, "kind": kind})
    return rows


def _exact_counts(mix: Mapping[str, float], total: int) -> list[str]:
    """``total`` kinds in the proportions of ``mix``, rounded by largest remainder (they sum to ``total``)."""
    scale = total / sum(mix.values())
    counts = {kind: int(share * scale) for kind, share in mix.items()}
    by_remainder = sorted(mix, key=lambda kind: counts[kind] - mix[kind] * scale)
    for kind in by_remainder[: total - sum(counts.values())]:
        counts[kind] += 1
    return [kind for kind, count in counts.items() for _ in range(count)]


def answer_only_rows(examples: Sequence[Example]) -> list[dict]:
    """Student rows with an empty ``reasoning_trace``: the "answer only" lower bound of distillation.

    Made into student records like any trace, they become ``question → <|begin_of_thought|>
    <|end_of_thought|>\\n\\n<|begin_of_solution|>111<|end_of_solution|>`` (an empty thought, see
    :meth:`rlt.formats.FormatConfig.student_messages`): a student trained on them learns to answer
    without reasoning, the baseline every explanation should beat.
    """
    return [{"question": e.question, "solution": e.solution, "reasoning_trace": ""} for e in examples]


__all__ = [
    "CORRUPTIONS",
    "FILLER_PHRASES",
    "GOLD",
    "OTHER",
    "AdditionTask",
    "OPERATORS",
    "answer_only_rows",
    "corrupt",
    "explanation_kind",
    "expression",
    "gold_explanation",
    "numbers_of",
    "question",
    "solution",
    "step",
    "teacher_warmup_rows",
]
