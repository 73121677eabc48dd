"""Multiple choice (rlt.choices): GPQA-schema rows lettered in a stated order, and the letter a response
answers with, on responses that trip simple readers. The rows are written here in GPQA's schema: its authors
ask that its questions not appear in plain text online."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rlt.choices import LETTERS, choice_question, extract_choice, is_choice_row

ROW = {"Question": "Which gas makes up most of Earth's atmosphere?", "Correct Answer": "Nitrogen",
       "Incorrect Answer 1": "Oxygen", "Incorrect Answer 2": "Argon", "Incorrect Answer 3": "Carbon dioxide"}


def test_a_gpqa_row_is_lettered_in_an_order_drawn_from_its_question():
    question = choice_question(ROW)
    assert is_choice_row(ROW) and sorted(question.options) == sorted(ROW[k] for k in list(ROW)[1:])
    assert question.options[LETTERS.index(question.answer)] == "Nitrogen"
    assert question.text == ROW["Question"] + "\n" + ", ".join(
        f"{letter}) {option}" for letter, option in zip(LETTERS, question.options))
    assert choice_question(dict(ROW)) == question  # the same order in every run and for every model


@given(st.text(min_size=1).filter(str.strip))
def test_the_order_is_a_function_of_the_question_alone(text):
    row = {**ROW, "Question": text}
    first, again = choice_question(row), choice_question(dict(reversed(list(row.items()))))
    assert first == again and first.options[LETTERS.index(first.answer)] == "Nitrogen"


def test_orders_differ_between_questions():
    answers = {choice_question({**ROW, "Question": f"Question {i}?"}).answer for i in range(40)}
    assert answers == set(LETTERS)


OPTIONS = ("Oxygen", "Nitrogen", "Argon", "Carbon dioxide")


def sol(text: str) -> str:
    return f"<|begin_of_thought|>thinking<|end_of_thought|>\n\n<|begin_of_solution|>{text}<|end_of_solution|>"


@pytest.mark.parametrize(("response", "letter"), [
    (sol("\\boxed{B}"), "B"),
    (sol("The answer is \\boxed{(b)}."), "B"),  # lower case, in parentheses
    (sol("\\boxed{Nitrogen}"), "B"),  # the option's text instead of its letter
    (sol("\\boxed{A, C}"), None),  # several letters boxed: no one answer
    (sol("This is a hard one, but the answer is D."), "D"),  # the article "a" is not option A
    (sol("A careful reading gives C."), "C"),  # nor is a capital "A" starting a sentence
    (sol("A) or B)"), None),  # a committed answer naming two options
    (sol("answer: c"), "C"),
    (sol("It must be Nitrogen."), None),  # prose naming no letter and not an option's text
    (sol("Nitrogen"), "B"),
    ("Thinking: A looks wrong, (C) maybe... Final answer: B", "B"),  # no solution section: the last named
    ("<|begin_of_thought|>B is tempting<|end_of_thought|><|begin_of_solution|>\\boxed{D}", "D"),  # unclosed
    ("I think a reasonable guess", None),
    (sol("\\boxed{B}") + " later text mentioning A)", "B"),  # the committed section wins
])
def test_the_letter_of_hard_responses(response, letter):
    assert extract_choice(response, OPTIONS) == letter
