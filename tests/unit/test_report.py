"""The demo report's verdict on the paper's ordering."""

from __future__ import annotations

import pytest

from rlt.report import ordering_holds

BASE = {"answer_only": 0.1, "warmup_teacher": 0.4, "rl_teacher": 0.9, "gold": 0.95}


@pytest.mark.parametrize(("change", "holds"), [
    ({}, True),
    ({"rl_teacher": 0.95}, True),  # the RL-teacher student may tie the gold one
    ({"rl_teacher": 0.96}, False),
    ({"warmup_teacher": 0.1}, False),  # a warm-up student at the answer-only floor is no better
    ({"rl_teacher": 0.4}, False),
    ({"answer_only": 0.5}, False),
])
def test_ordering_is_strict_except_against_gold(change, holds):
    assert ordering_holds({**BASE, **change}) is holds
