"""Countdown, a task rlt reads: reach a target from given numbers with + − × ÷.

A row ``{"target": 24, "nums": [3, 4, 5, 6]}`` (TinyZero's files, ``../shared/data/countdown``) becomes

* a **question** stated in words (:func:`question`);
* a **solution**, ``expression = target``: an arithmetic expression that uses each number at most once
  and equals the target, found by an exact search (:func:`solve`; fractions, never floats, so ``6 / 4``
  is 3/2 and not 1.5000000001);
* a **reference** for checking answers, the puzzle itself (:class:`Puzzle`, ``"24 from [3, 4, 5, 6]"``):
  any correct expression is right, not only the one the search found.

:func:`check` reads an answer safely (Python's parser, arithmetic nodes only, never ``eval``), refuses a
number not given or used more often than given, division by zero and anything but arithmetic, and
compares the exact value with the target. It is ``rlt evaluate --match countdown`` and the verifiable
reward of ``rlt student-rl`` on Countdown.
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import Any

_OPERATORS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}
_PUZZLE = re.compile(r"\s*(-?\d+)\s+from\s+\[([\d,\s]*)\]\s*")
_TRAILING_TARGET = re.compile(r"^(?P<expression>.*?)\s*=\s*(?P<value>-?\d+)\s*$", re.DOTALL)


@dataclass(frozen=True)
class Puzzle:
    target: int
    nums: tuple[int, ...]

    def __str__(self) -> str:
        return f"{self.target} from [{', '.join(map(str, self.nums))}]"

    @classmethod
    def parse(cls, text: str) -> Puzzle:
        """The puzzle written by ``str`` (how evaluate's results name a Countdown reference)."""
        match = _PUZZLE.fullmatch(text)
        if not match:
            raise ValueError(f"not a Countdown puzzle: {text!r} (expected e.g. '24 from [3, 4, 5, 6]')")
        return cls(int(match.group(1)), tuple(int(n) for n in match.group(2).split(",") if n.strip()))


def is_countdown_row(record: dict) -> bool:
    return record.get("target") is not None and record.get("nums") is not None


def puzzle_of(record: dict) -> Puzzle:
    """The puzzle of a row; a ``ValueError`` says what is wrong with it."""
    target, nums = record["target"], record["nums"]
    if isinstance(target, bool) or not isinstance(target, int):
        raise ValueError(f"field 'target' is {type(target).__name__}, expected an integer")
    nums = list(nums) if not isinstance(nums, (str, bytes)) else None
    if not nums or any(isinstance(n, bool) or not isinstance(n, int) or n < 0 for n in nums):
        raise ValueError("field 'nums' must be a non-empty list of non-negative integers")
    return Puzzle(target, tuple(nums))


def question(puzzle: Puzzle) -> str:
    return (f"Using the numbers [{', '.join(map(str, puzzle.nums))}], each at most once, and the operations "
            f"+, -, *, /, write an expression that equals {puzzle.target}.")


# Search ----------------------------------------------------------------------------------------------------


def solve(puzzle: Puzzle) -> str | None:
    """An expression of the numbers (each at most once) whose exact value is the target, or None.

    Prefers one that uses every number (the usual rule of the game); otherwise the first that reaches the
    target with fewer. Exhaustive over the order of the numbers, the operations and the bracketing.
    """
    items = tuple(sorted((Fraction(n), str(n)) for n in puzzle.nums))
    return _reach(items, Fraction(puzzle.target), True) or _reach(items, Fraction(puzzle.target), False)


@lru_cache(maxsize=200_000)
def _reach(items: tuple[tuple[Fraction, str], ...], target: Fraction, use_all: bool) -> str | None:
    """Combine two of ``items`` at a time until one equals ``target`` (all of them merged, if ``use_all``)."""
    for value, expression in items:
        if value == target and (len(items) == 1 or not use_all):
            return expression
    if len(items) == 1:
        return None
    for i in range(len(items)):
        for j in range(len(items)):
            if i == j:
                continue
            (a, a_text), (b, b_text) = items[i], items[j]
            rest = [item for k, item in enumerate(items) if k not in (i, j)]
            for value, text in _combinations(a, a_text, b, b_text, i < j):
                found = _reach(tuple(sorted([*rest, (value, text)])), target, use_all)
                if found:
                    return found
    return None


def _combinations(a: Fraction, a_text: str, b: Fraction, b_text: str, first: bool):
    """a+b and a*b once per pair (they commute), a-b and a/b in both orders."""
    if first:
        yield a + b, f"({a_text} + {b_text})"
        yield a * b, f"({a_text} * {b_text})"
    yield a - b, f"({a_text} - {b_text})"
    if b != 0:
        yield a / b, f"({a_text} / {b_text})"


def solution_text(expression: str, puzzle: Puzzle) -> str:
    """The solution section's text: the expression, without its outer brackets, and the target."""
    if expression.startswith("(") and _balanced(expression[1:-1]):
        expression = expression[1:-1]
    return f"{expression} = {puzzle.target}"


def _balanced(text: str) -> bool:
    depth = 0
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0:
            return False
    return depth == 0


# Checking --------------------------------------------------------------------------------------------------


class _NotArithmetic(ValueError):
    pass


def check(answer: str | None, puzzle: Puzzle) -> bool:
    """Whether ``answer`` (an expression, optionally followed by ``= target``) solves ``puzzle``."""
    if answer is None:
        return False
    answer = answer.strip()
    trailing = _TRAILING_TARGET.match(answer)
    if trailing:
        if int(trailing.group("value")) != puzzle.target:
            return False
        answer = trailing.group("expression")
    try:
        tree = ast.parse(answer.replace("×", "*").replace("÷", "/").replace("−", "-"), mode="eval")
        used: list[int] = []
        value = _value(tree.body, used)
    except (SyntaxError, _NotArithmetic, ZeroDivisionError, RecursionError):
        return False
    available = Counter(puzzle.nums)
    return not (Counter(used) - available) and value == puzzle.target


def _value(node: Any, used: list[int]) -> Fraction:
    if isinstance(node, ast.Constant) and isinstance(node.value, int) and not isinstance(node.value, bool):
        used.append(node.value)
        return Fraction(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        left, right = _value(node.left, used), _value(node.right, used)
        if isinstance(node.op, ast.Add):
            return left + right
        if isinstance(node.op, ast.Sub):
            return left - right
        if isinstance(node.op, ast.Mult):
            return left * right
        return left / right  # ZeroDivisionError: refused by check()
    raise _NotArithmetic(type(node).__name__)


def example_fields(record: dict) -> tuple[str, str]:
    """The question and solution of a Countdown row; a ``ValueError`` if it has no solution."""
    puzzle = puzzle_of(record)
    expression = solve(puzzle)
    if expression is None:
        raise ValueError(f"no expression of {list(puzzle.nums)} reaches {puzzle.target}")
    return question(puzzle), solution_text(expression, puzzle)


__all__ = ["Puzzle", "check", "example_fields", "is_countdown_row", "puzzle_of", "question", "solution_text",
           "solve"]

