"""The demo report's verdict on the paper's ordering, and its rank correlation of reward and outcome."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rlt.demo.report import ordering_holds, ranks, spearman

BASE = {"answer_only": 0.1, "warmup_teacher": 0.4, "rl_teacher": 0.9, "gold": 0.95}


@pytest.mark.parametrize(("change", "holds"), [
    ({}, True),
    ({"rl_teacher": 0.95}, True),  # the RL-teacher student may tie the gold one
    ({"warmup_teacher": 0.1}, False),  # a warm-up student at the answer-only floor is no better
    ({"rl_teacher": 0.4}, False),
    ({"answer_only": 0.5}, False),
])
def test_ordering_is_strict_below_the_rl_teacher_student(change, holds):
    assert ordering_holds({**BASE, **change}, problems=500) is holds


@pytest.mark.parametrize(("rl", "gold", "problems", "holds"), [
    (0.9995, 0.996, 500, True),  # 2 standard errors: 2·sqrt((0.9995·0.0005 + 0.996·0.004)/500) = 0.0060
    (0.9995, 0.996, 50_000, False),  # the same gap over 100 times the questions is no longer chance
    (1.0, 0.98, 500, False),  # 2·sqrt(0.98·0.02/500) = 0.0125 < 0.02
    (0.97, 0.95, 500, True),  # 2·sqrt((0.97·0.03 + 0.95·0.05)/500) = 0.0248 > 0.02
    (0.98, 0.95, 500, False),  # 0.0232 < 0.03
])
def test_rl_teacher_student_may_pass_gold_only_by_sampling_error(rl, gold, problems, holds):
    assert ordering_holds({**BASE, "rl_teacher": rl, "gold": gold}, problems) is holds


def _spearman_reference(x, y):
    """Spearman's rho for values without ties: 1 - 6·Σd² / (n(n²-1)), in float64 from plain ranks."""
    rank = {v: i + 1 for i, v in enumerate(sorted(x))}, {v: i + 1 for i, v in enumerate(sorted(y))}
    d2 = sum((rank[0][a] - rank[1][b]) ** 2 for a, b in zip(x, y))
    n = len(x)
    return 1 - 6 * d2 / (n * (n * n - 1))


@given(st.lists(st.tuples(st.floats(-1e6, 1e6), st.floats(-1e6, 1e6)), min_size=2, max_size=30,
                unique_by=(lambda p: p[0], lambda p: p[1])))
def test_spearman_matches_the_textbook_formula_without_ties(pairs):
    x, y = zip(*pairs)
    assert spearman(x, y) == pytest.approx(_spearman_reference(x, y), abs=1e-12)


@given(st.lists(st.integers(-3, 3), min_size=2, max_size=20), st.lists(st.integers(-3, 3), min_size=2, max_size=20))
def test_spearman_is_a_correlation_that_monotone_maps_keep(x, y):
    n = min(len(x), len(y))
    x, y = x[:n], y[:n]
    rho = spearman(x, y)
    if len(set(x)) == 1 or len(set(y)) == 1:
        assert rho is None
        return
    assert -1 - 1e-12 <= rho <= 1 + 1e-12
    assert spearman([v ** 3 + 5 for v in x], y) == pytest.approx(rho, abs=1e-12)
    assert spearman(x, x) == pytest.approx(1.0)


def test_tied_values_share_their_mean_rank():
    assert ranks([10, 20, 20, 5]) == [2, 3.5, 3.5, 1]
    # Pearson of the tie-averaged ranks [1, 2.5, 2.5, 4] and [1, 2, 3, 4], by hand: 4.5 / sqrt(4.5 · 5)
    assert spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(4.5 / (4.5 * 5) ** 0.5, abs=1e-12)


def test_explained_shares_count_gold_and_chains_ending_at_the_solution(tmp_path):
    from rlt.commands.distill import DistillOutputs
    from rlt.data import write_jsonl
    from rlt.demo.report import explained_shares

    rows = [("What is 50+60-70?", "40", "50+60=110, 110-70=40"),  # gold
            ("What is 50+60-70?", "40", "50+60=110, 110+70=40"),  # ends at the solution, wrongly
            ("What is 50+60+70?", "180", "The answer is 180."),
            ("What is 50+60+70?", "180", "50+60=110, 110+70=181")]
    distillation = DistillOutputs(tmp_path)
    write_jsonl(distillation.messages, [{"question": q, "solution": s, "reasoning_trace": t} for q, s, t in rows])
    assert explained_shares(distillation) == (0.25, 0.5)


def test_the_transfer_table_reads_each_seeds_students_and_teachers(tmp_path):
    """`rlt demo --transfer true`'s section of the report, from the files its stages write (the stages themselves:
    tests/commands/test_demo.py's structure test, and the cold-start benchmark's smoke run)."""
    from rlt.data import write_json, write_jsonl
    from rlt.demo.report import collect_transfer, transfer_table
    from rlt.demo.stages import DemoOutputs

    accuracy = {0: {"answer_only": 0.4, "warmup_teacher": 0.1, "rl_teacher": 0.2},
                1: {"answer_only": 0.3, "warmup_teacher": 0.2, "rl_teacher": 0.1}}
    traces = {"teacher_sft": ["The answer is 40.", "50+60=110, 110-70=40"],  # gold on half
              "teacher_rl": ["50+60=110, 110+70=180", "50+60=110, 110+70=40"]}  # never gold, ends at 40 on half
    for seed in accuracy:
        run = DemoOutputs(tmp_path).seed(seed)
        for kind, value in accuracy[seed].items():
            evaluation = run.evaluation(f"subtraction_{kind}")
            evaluation.folder.mkdir(parents=True)
            write_json(evaluation.summary, {"pass@1": value})
        for teacher, texts in traces.items():
            distillation = run.distillation(teacher, "subtraction_")
            distillation.folder.mkdir(parents=True)
            write_jsonl(distillation.messages, [{"question": "What is 50+60-70?", "solution": "40",
                                                 "reasoning_trace": text} for text in texts])
    transfer = collect_transfer(tmp_path, [0, 1], "subtraction")
    assert transfer["rl_beats_warmup_per_seed"] == [True, False]
    assert transfer["accuracy"]["answer_only"]["per_seed"] == [0.4, 0.3]
    assert transfer["teacher_gold_rate"]["teacher_sft"]["mean"] == 0.5
    assert transfer["teacher_gold_rate"]["teacher_rl"]["mean"] == 0.0
    assert transfer["teacher_reaches_solution"]["teacher_rl"]["mean"] == 0.5
    table = transfer_table({"transfer": transfer})
    assert "| transfer to subtraction: student trained on |" in table
    assert "| 0.350 ± 0.050 | 0.400, 0.300 |" in table
    assert "RL-teacher student above the warm-up-teacher student on 1 of 2 seeds." in table
    assert "RL teacher: 0.0% gold, 50.0% ending at the solution" in table
