"""Countdown: the exact search's solutions verify, and the checker refuses what is not a solution."""

from __future__ import annotations

import json
from fractions import Fraction

import pytest
from conftest import SHARED_DATA
from hypothesis import given, settings
from hypothesis import strategies as st

from rlt.answers import answers_match, extract_answer, reference_answer
from rlt.countdown import Puzzle, check, example_fields, puzzle_of, solution_text, solve
from rlt.data import DataError, load_examples

NUMS = st.lists(st.integers(min_value=1, max_value=100), min_size=2, max_size=4)


@settings(max_examples=60, deadline=None)
@given(NUMS, st.integers(min_value=-50, max_value=500))
def test_every_solution_the_search_returns_verifies(nums, target):
    puzzle = Puzzle(target, tuple(nums))
    expression = solve(puzzle)
    if expression is not None:
        assert check(expression, puzzle) and check(solution_text(expression, puzzle), puzzle)


@settings(max_examples=100, deadline=None)
@given(NUMS, st.data())
def test_a_reachable_target_is_always_found(nums, data):
    """Targets built from the numbers themselves (sums of a subset) are solvable, so the search finds them."""
    subset = data.draw(st.lists(st.sampled_from(range(len(nums))), min_size=1, max_size=len(nums), unique=True))
    assert solve(Puzzle(sum(nums[i] for i in subset), tuple(nums))) is not None


def test_solutions_use_every_number_when_they_can():
    expression = solve(Puzzle(24, (4, 7, 8, 8)))
    assert sorted(int(t) for t in expression.replace("(", " ").replace(")", " ").split() if t.isdigit()) == [4, 7, 8, 8]
    assert solve(Puzzle(5, (5, 1000))) == "5"  # 1000 cannot join in: 5 alone reaches the target
    assert solve(Puzzle(7, (2, 2))) is None


@pytest.mark.parametrize(("answer", "right"), [
    ("(6 - 4) * (3 + 9)", True), ("(6-4)*(3+9) = 24", True), ("12 * 2", False),   # 12 and 2 are not given
    ("6 * 4", True), ("6 * 4 * 1", False),                                        # a number not given
    ("(9 - 3) * 4", True), ("(9 + 9 + 6)", False),                                # 9 used twice, once given
    ("(6 - 4) * (3 + 9) = 25", False), ("3 / (9 - 9) + 24", False),               # wrong target; 1/0
    ("__import__('os').system('true')", False), ("6 * 4 if 1 else 0", False),      # not arithmetic
    ("-(6 - 4) * -(3 + 9)", False), ("6 ** 2 - 12", False), ("24.0", False),     # unary minus, power, floats
    ("six times four", False), ("", False), (None, False),
])
def test_the_checker_refuses_what_is_not_a_solution(answer, right):
    assert check(answer, Puzzle(24, (3, 4, 6, 9))) == right


def test_division_is_exact():
    assert check("(3 / 4) * 8 + 0", Puzzle(6, (3, 4, 8, 0)))
    assert Fraction(1, 3) * 3 == 1  # the arithmetic the checker and the search use
    assert check("1 / 3 * 3", Puzzle(1, (1, 3, 3)))


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet="0123456789+-*/() =.x_a", max_size=20))
def test_the_checker_never_raises(text):
    check(text, Puzzle(24, (3, 4, 6, 9)))


def test_rows_become_examples_and_references():
    row = {"target": 24, "nums": [3, 4, 6, 9]}
    question, solution = example_fields(row)
    assert "[3, 4, 6, 9]" in question and "24" in question and solution.endswith(" = 24")
    assert reference_answer(row) == "24 from [3, 4, 6, 9]" == str(puzzle_of(row))
    assert Puzzle.parse(reference_answer(row)) == puzzle_of(row)
    answer = extract_answer(f"<|begin_of_thought|>try<|end_of_thought|>\n\n<|begin_of_solution|>{solution}"
                            "<|end_of_solution|>")
    assert answers_match(answer, reference_answer(row), "countdown")
    assert not answers_match("24", reference_answer(row), "countdown")


def test_a_row_without_a_solution_is_a_bad_row(tmp_path):
    path = tmp_path / "countdown.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in [{"target": 6, "nums": [2, 3]}, {"target": 7, "nums": [2, 2]},
                                                            {"target": 5, "nums": "23"}]))
    with pytest.raises(DataError, match=r"line 2: no expression of \[2, 2\] reaches 7"):
        load_examples(path)
    loaded = load_examples(path, on_error="skip")
    assert len(loaded.items) == 1 and [e.line for e in loaded.skipped] == [2, 3]


@pytest.mark.skipif(not (SHARED_DATA / "countdown").exists(), reason="needs ../shared/data")
def test_the_shared_countdown_rows_are_solved():
    loaded = load_examples(SHARED_DATA / "countdown" / "test.parquet", limit=200, on_error="skip")
    assert len(loaded.items) == 200
    for example in loaded.items:
        puzzle = Puzzle.parse(reference_answer({"target": int(example.solution.rsplit("=", 1)[1]),
                                                "nums": json.loads(example.question.split("numbers ")[1]
                                                                   .split("]")[0] + "]")}))
        assert check(example.solution, puzzle)
