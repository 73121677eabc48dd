"""The demo report's verdict on the paper's ordering."""

from __future__ import annotations

import pytest

from rlt.demo.report import ordering_holds

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
