"""The verifiable reward of a student's answers: ``rlt student-rl``'s reward function.

1 for a right final answer, 0 otherwise, as ``rlt evaluate`` checks it (:func:`rlt.answers.extract_answer`,
then :func:`rlt.answers.answers_match` with the match mode: math-verify, exact, or a Countdown
expression), plus ``format_coef`` when the completion is in the student's format: its thought section,
then its solution section. A TRL reward function: a plain callable over completions and the dataset's
``reference`` column, every term logged through ``log_metric``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from rlt.answers import MatchMode, answers_match
from rlt.formats import FormatConfig
from rlt.problems import prediction


class VerifiableReward:
    __name__ = "verifiable_reward"  # TRL names reward functions by __name__

    def __init__(self, fmt: FormatConfig, match: MatchMode, format_coef: float = 0.0):
        self.fmt, self.match, self.format_coef = fmt, match, format_coef
        thought = f"{re.escape(fmt.begin_thought)}.*?{re.escape(fmt.end_thought)}"
        solution = f"{re.escape(fmt.begin_solution)}.*?{re.escape(fmt.end_solution)}"
        self._format = re.compile(rf"\s*{thought}\s*{solution}", flags=re.DOTALL)

    def terms(self, completion: str, reference: str, options: Sequence[str] = ()) -> dict[str, float]:
        answer = prediction(completion, self.fmt, self.match, options)
        correct = float(answers_match(answer, reference, self.match))
        formatted = float(self._format.match(completion) is not None)
        return {"reward": correct + self.format_coef * formatted, "correct": correct, "format": formatted,
                "no_answer": float(answer is None)}

    def __call__(self, prompts: list, completions: list, reference: list[str],
                 log_metric: Callable[[str, float], None] | None = None, options: list | None = None,
                 **_: Any) -> list[float]:
        """TRL's reward function; ``options`` (a column): each multiple-choice question's options."""
        texts = [c if isinstance(c, str) else c[-1]["content"] for c in completions]
        options = options or [()] * len(texts)
        terms = [self.terms(text, ref, opts) for text, ref, opts in zip(texts, reference, options, strict=True)]
        if log_metric is not None:
            for name in terms[0]:
                log_metric(f"student/{name}", sum(t[name] for t in terms) / len(terms))
        return [t["reward"] for t in terms]


__all__ = ["VerifiableReward"]
