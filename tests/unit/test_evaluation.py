"""The benchmark presets' table (rlt.evaluation): pass@1 ± its standard error, the mean, the paper's layout."""

from __future__ import annotations

import math
import statistics

import pytest

from rlt.evaluation import BENCHMARKS, Score, pass_at_1_stderr, table


def test_the_standard_error_is_over_problems():
    per_problem = [1.0, 0.0, 0.5, 1.0]
    assert pass_at_1_stderr(per_problem) == pytest.approx(statistics.stdev(per_problem) / 2)
    assert pass_at_1_stderr([1.0]) == 0.0
    binary = [1.0] * 30 + [0.0] * 70  # greedy, one sample: sqrt(p(1-p)/(n-1)) for n problems
    assert pass_at_1_stderr(binary) == pytest.approx(math.sqrt(0.3 * 0.7 / 99))


def test_the_table_is_a_row_per_model_and_a_column_per_benchmark_with_their_mean():
    rows = {"ours": {"aime24": Score(0.2, 0.073), "math500": Score(0.84, 0.016)},
            "paper": {"aime24": Score(0.233), "gpqa_diamond": Score(0.42)}}
    assert table(rows).splitlines() == [
        "| model | aime24 | math500 | gpqa_diamond | mean |",
        "| --- | --- | --- | --- | --- |",
        "| ours | 20.0 ± 7.3 | 84.0 ± 1.6 | – | 52.0 |",
        "| paper | 23.3 | – | 42.0 | 32.6 |",
    ]


def test_every_preset_says_where_its_protocol_comes_from():
    for name, preset in BENCHMARKS.items():
        assert "{question}" in preset.question_template and preset.source, name


def test_the_papers_numbers_compare_with_their_published_means():
    from pathlib import Path

    from rlt.commands.evaluate import compared

    rows = compared([str(Path(__file__).resolve().parents[2] / "configs" / "baselines" / "paper.yaml")])
    means = {model: round(100 * statistics.fmean(s.pass_at_1 for s in scores.values()), 1)
             for model, scores in rows.items()}
    assert means == {"Qwen2.5-7B-Instruct": 39.2, "Bespoke-7B": 46.6, "RLT-7B": 49.5, "Bespoke-32B": 71.5,
                     "RLT-32B": 73.2, "RLT-7B, cold-start RL": 50.5}  # the paper's mean column
