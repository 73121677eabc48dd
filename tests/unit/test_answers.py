"""Answer extraction, reference answers and answer checking, down to agreement with real Sky-T1 verdicts."""

from __future__ import annotations

import json
import threading

import pytest
from conftest import SHARED_DATA

from rlt.answers import answers_match, extract_answer, final_answer_line, last_boxed, reference_answer
from rlt.formats import FormatConfig

SKY_T1 = SHARED_DATA / "reasoning_traces_sky_t1"
STRATOS_TAGS = ("<|begin_of_thought|>", "<|end_of_thought|>", "<|begin_of_solution|>", "<|end_of_solution|>")
MIN_AGREEMENT = 0.95


def stratos(thought: str, solution: str) -> str:
    return f"{STRATOS_TAGS[0]}{thought}{STRATOS_TAGS[1]}\n\n{STRATOS_TAGS[2]}{solution}{STRATOS_TAGS[3]}"


# Extraction ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    (stratos("so \\boxed{7}", "Thus $x = \\boxed{\\frac{1}{2}}$."), "\\frac{1}{2}"),  # nested braces
    (stratos("", "\\boxed{1} or rather \\fbox{2}"), "2"),  # the last box, \fbox too
    (stratos("", "\\boxed{\\left\\{ 1, 2 \\right\\}}"), "\\left\\{ 1, 2 \\right\\}"),
    (stratos("", "\\boxed{x \\in \\{1\\}} then \\boxed{\\}"), "x \\in \\{1\\}"),  # escaped braces do not count
    (stratos("", "She has 1,234 left.\n#### 1,234"), "1234"),  # thousands separator dropped
    (stratos("", "  The answer is 42.  "), "The answer is 42."),  # neither: the whole section
    (stratos("", "first <|end_of_solution|> <|begin_of_solution|>\\boxed{9}"), "9"),  # the last section
    (stratos("\\boxed{5}", "no box here"), "no box here"),  # the solution section wins over the thought
    ("<|begin_of_thought|>truncated, so far \\boxed{3} and then", "3"),  # no solution section: last box
    ("Natalia sold 72 clips.\n#### 72\n", "72"),
    ("\\boxed{4} and \\boxed{\\frac{1}{", "4"),  # an unclosed box is skipped
    ("<|begin_of_thought|>It is 17, surely<|end_of_thought|>", None),  # no answer: never the last number
    ("<|begin_of_solution|>\\boxed{8}", "8"),  # unclosed section: the text's last box
])
def test_extract_answer(text, expected):
    assert extract_answer(text) == expected


def test_extract_answer_follows_the_tag_format():
    text = "<thought>hmm</thought>\n\n<solution>so \\boxed{12}</solution>"
    assert extract_answer(text, FormatConfig(tag_format="r1")) == "12"
    assert extract_answer("<solution>12</solution>", FormatConfig(tag_format="r1")) == "12"
    assert extract_answer("<solution>12</solution>") is None  # not a Stratos section, and no box


def test_helpers():
    assert last_boxed("no box") is None and last_boxed("\\boxed {x^{2}}") == "x^{2}"
    assert final_answer_line("#### -3.5") == "-3.5" and final_answer_line("4 ####") is None


# Reference answers -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("row", "expected"), [
    ({"problem": "?", "solution": "... \\boxed{5}", "answer": "\\frac{14}{3}"}, "\\frac{14}{3}"),  # MATH-500
    ({"problem": "?", "answer": 204}, "204"),  # an integer answer column
    ({"question": "?", "answer": "Janet sells 16 - 3 = 13.\n#### 13"}, "13"),  # GSM8K
    ({"problem": "?", "solution": "So $\\boxed{\\sqrt{2}}$.\n\nDone."}, "\\sqrt{2}"),  # no answer column
    ({"question": "?", "solution": "Two and two.\n#### 4"}, "4"),  # a normalised GSM8K row
    ({"question": "What is 47+38+26?", "solution": "111"}, "111"),  # the toy task: a bare answer
])
def test_reference_answer(row, expected):
    assert reference_answer(row) == expected


def test_a_worked_solution_without_an_answer_is_refused():
    with pytest.raises(ValueError, match="no reference answer"):
        reference_answer({"question": "?", "solution": "First step.\nSecond step."})


# Checking --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("predicted", "reference"), [
    ("0.5", "\\frac{1}{2}"),
    ("\\boxed{3}", "3"),
    ("\\dfrac{14}{3}", "\\frac{14}{3}"),
    ("(3, \\frac{\\pi}{2})", "\\left( 3, \\frac{\\pi}{2} \\right)"),
    ("[1, 2)", "[1,2)"),
    ("(-\\infty, 0) \\cup (1, \\infty)", "(-\\infty,0)\\cup(1,\\infty)"),
    ("36", "\\$36"),
    ("3 + 2\\sqrt{2}, 3 - 2\\sqrt{2}", "3 \\pm 2 \\sqrt{2}"),
    ("The answer is $x = 7$.\nDone.", "7"),  # a whole solution section: math-verify finds the answer
])
def test_math_equivalences(predicted, reference):
    assert answers_match(predicted, reference)


@pytest.mark.parametrize(("predicted", "reference"), [
    ("0.51", "\\frac{1}{2}"),
    ("[1, 2]", "[1, 2)"),
    ("(1, 2)", "[1, 2)"),
    ("\\frac{2}{1}", "\\frac{1}{2}"),
    ("x^2", "x^3"),
    (None, "3"),
    ("", "3"),
])
def test_math_differences(predicted, reference):
    assert not answers_match(predicted, reference)


def test_exact_mode_compares_integers_or_strings():
    assert answers_match(" 0111", "111", "exact") and answers_match("+5", "5", "exact")
    assert not answers_match("111.0", "111", "exact") and not answers_match("0.5", "\\frac{1}{2}", "exact")
    assert answers_match("abc ", "abc", "exact") and not answers_match(None, "1", "exact")


def test_math_mode_works_off_the_main_thread():
    verdicts = []
    worker = threading.Thread(target=lambda: verdicts.append(answers_match("0.5", "\\frac{1}{2}")))
    worker.start()
    worker.join()
    assert verdicts == [True]


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="mode"):
        answers_match("1", "1", "fuzzy")  # type: ignore[arg-type]


# Agreement with the Sky-T1 evaluation harness --------------------------------------------------------


def sky_t1_rows() -> list[dict]:
    files = sorted(SKY_T1.glob("*/*.jsonl"))
    if not files:
        pytest.skip(f"no Sky-T1 traces under {SKY_T1} (set RLT_SHARED_DATA)")
    return [json.loads(line) for file in files for line in file.read_text().splitlines() if line.strip()]


def test_verdicts_agree_with_sky_t1_scores_on_complete_traces():
    """The harness that wrote these traces (Qwen2.5-Math's) judged each one; where a trace has all four
    tags, our extraction + math-verify must reach the same verdict on at least 95% of them."""
    rows = [r for r in sky_t1_rows() if all(tag in r["code"][0] for tag in STRATOS_TAGS)]
    disagreements = []
    for row in rows:
        predicted = extract_answer(row["code"][0])
        if answers_match(predicted, reference_answer(row)) != row["score"][0]:
            disagreements.append((row["idx"], predicted, reference_answer(row), row["score"][0]))
    agreement = 1 - len(disagreements) / len(rows)
    print(f"\nSky-T1: {len(rows)} complete traces, agreement {agreement:.1%}, disagreements:")
    for idx, predicted, reference, score in disagreements:
        print(f"  idx {idx}: predicted {predicted!r:.80} reference {reference!r} harness score {score}")
    assert len(rows) >= 100
    assert agreement >= MIN_AGREEMENT, disagreements


@pytest.mark.parametrize(("predicted", "reference"), [
    ("104.", "104"),  # a closing sentence period (AIME 2024's own solutions, benchmarks/answer_checks.py)
    ("\\textbf{(073)}", "073"),  # AoPS's bold answer in parentheses
    ("\\textbf{(113) }", "113"),
    ("\\mathbf{127}", "127"),
    ("(3, 4).", "(3,4)"),  # math-verify alone reads (3, 4). as 4
])
def test_wrapping_math_verify_does_not_see_through_is_taken_off(predicted, reference):
    assert answers_match(predicted, reference)
    assert not answers_match(predicted, "105")


@pytest.mark.parametrize(("predicted", "reference"), [
    ("(073)", "73"),  # no bold: math-verify reads an integer in parentheses itself
    ("\\textbf{127}", "127"),
])
def test_wrapping_math_verify_sees_through_is_left_to_it(predicted, reference):
    assert answers_match(predicted, reference)
    assert not answers_match(predicted, "74")
