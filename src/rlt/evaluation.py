"""The benchmarks of the paper's evaluation as presets, and the table their results make.

A preset (:data:`BENCHMARKS`) sets what a published number was measured on: the dataset (hub name,
subset, split, rows kept), the question's wording, the answer check. A protocol (:data:`PROTOCOLS`) sets
the sampling:

* ``skythought``: SkyThought at commit ``4bb8f3e`` (NovaSky-AI/SkyThought, ``skythought/evals``), which the
  paper's table was collected with: greedy decoding, top-p 1, up to 32,768 new tokens, one sample. Its
  task files give the datasets and the templates below, and its Sky-T1 system prompt is rlt's student
  system prompt (Bespoke-Stratos trained with it).
* ``r1``: DeepSeek-R1's convention: temperature 0.6, top-p 0.95, pass@1 averaged over 4 samples per question.

Every setting of a preset is a default: a flag or config key overrides it (``--dataset`` a local copy of the
hub dataset, say).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rlt.answers import MatchMode
from rlt.errors import UserError

_BOXED = "Return your final response within \\boxed{}."


@dataclass(frozen=True)
class Benchmark:
    """What a benchmark's published numbers were measured on (see the module docstring)."""

    dataset: str
    split: str
    question_template: str  # "{question}" stands for the row's question
    match: MatchMode
    source: str
    subset: str | None = None
    where: str | None = None  # FIELD=TEXT: only rows whose field contains the text

    def defaults(self) -> dict[str, Any]:
        """The command's defaults this preset sets."""
        return {"dataset": self.dataset, "split": self.split, "subset": self.subset, "where": self.where,
                "question_template": self.question_template, "match": self.match}


BENCHMARKS: dict[str, Benchmark] = {
    "aime24": Benchmark("AI-MO/aimo-validation-aime", "train", f"{_BOXED} {{question}}", "math",
                        "SkyThought 4bb8f3e tasks/aime/aime24.yaml", where="url=2024"),
    "aime25": Benchmark("opencompass/AIME2025", "test", f"{{question}}\n{_BOXED[:-1]}", "math",
                        "SkyThought 4bb8f3e tasks/aime/aime25.yaml (the hub dataset's two subsets, 15 problems "
                        "each)", subset="AIME2025-I,AIME2025-II"),
    "math500": Benchmark("qq8933/MATH500", "test", f"{_BOXED} {{question}}", "math",
                         "SkyThought 4bb8f3e tasks/math/math500.yaml"),
    "gpqa_diamond": Benchmark(
        "Idavidrein/gpqa", "train", f"{_BOXED[:-1]} and only include the letter choice (A, B, C, or D) as your "
                                    "final response. {question}", "choice",
        "SkyThought 4bb8f3e tasks/gpqa_diamond/gpqa_diamond.yaml (options shuffled per question: rlt.choices)",
        subset="gpqa_diamond"),
    "gsm8k": Benchmark("openai/gsm8k", "test", "Given the following problem, reason and give a final answer to the "
                       "problem.\nProblem: {question}\nYour response should end with \"The final answer is "
                       "[answer]\" where [answer] is the response to the problem.", "math",
                       "SkyThought 4bb8f3e tasks/gsm8k/gsm8k.yaml", subset="main"),
    "countdown": Benchmark("Jiayi-Pan/Countdown-Tasks-3to4", "train", "{question}", "countdown",
                           "TinyZero's Countdown data (its rows carry no question: rlt states one)"),
}
PROTOCOLS: dict[str, dict[str, Any]] = {
    "skythought": {"temperature": 0.0, "top_p": 1.0, "num_samples": 1, "max_new_tokens": 32768},
    "r1": {"temperature": 0.6, "top_p": 0.95, "num_samples": 4, "max_new_tokens": 32768},
}


def benchmark_names(text: str) -> list[str]:
    """``aime24,math500`` → its names, each a known preset (else a one-line error naming the known ones)."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown or not names:
        raise UserError(f"unknown benchmark {', '.join(unknown) or repr(text)} (known: {', '.join(BENCHMARKS)})")
    return names


def pass_at_1_stderr(per_problem: Sequence[float]) -> float:
    """The standard error of pass@1, the mean over problems of each problem's share of right samples: the
    problems' sample standard deviation over the square root of their number (0 for one problem)."""
    return statistics.stdev(per_problem) / math.sqrt(len(per_problem)) if len(per_problem) > 1 else 0.0


@dataclass(frozen=True)
class Score:
    pass_at_1: float
    stderr: float | None = None  # None: a number typed in (a paper's), without one


def table(rows: Mapping[str, Mapping[str, Score]]) -> str:
    """A markdown table laid out like the paper's: a row per model, a column per benchmark and their mean
    (over the benchmarks the row has), pass@1 in percent ± its standard error."""
    benchmarks = list(dict.fromkeys(name for scores in rows.values() for name in scores))

    def cell(score: Score | None) -> str:
        if score is None:
            return "–"
        return f"{100 * score.pass_at_1:.1f}" + ("" if score.stderr is None else f" ± {100 * score.stderr:.1f}")

    lines = ["| model | " + " | ".join(benchmarks) + " | mean |", "| --- |" + " --- |" * (len(benchmarks) + 1)]
    for model, scores in rows.items():
        mean = statistics.fmean(s.pass_at_1 for s in scores.values()) if scores else None
        lines.append(f"| {model} | " + " | ".join(cell(scores.get(b)) for b in benchmarks)
                     + f" | {'–' if mean is None else f'{100 * mean:.1f}'} |")
    return "\n".join(lines)


__all__ = ["BENCHMARKS", "PROTOCOLS", "Benchmark", "Score", "benchmark_names", "pass_at_1_stderr", "table"]
