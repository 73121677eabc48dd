"""Explanations of graded quality for the same questions, to measure whether the RLT reward ranks explanations
as students learn from them (the paper's reason to keep the best of k by reward).

For each question: its gold explanation, the same chain with a slipped sum, with two steps merged, stopping one
step short, the answer alone stated, another question's chain (unrelated text), and each given teacher's own
explanation of it. ``rlt score --reward_buckets`` pools them all and cuts the pool by reward; a student is
distilled from each cut.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

from rlt.data import Example
from rlt.toy.task import GOLD, corrupt, gold_explanation, numbers_of

# The hand-made grades, best first by construction; "unrelated" is another question's gold chain.
GRADES: tuple[str, ...] = (GOLD, "wrong_intermediate", "skipped_step", "unfinished", "restated_answer", "unrelated")


def graded_rows(examples: Sequence[Example], samples: Mapping[str, Mapping[str, str]], seed: int = 0) -> list[dict]:
    """One row per question of ``examples``: ``explanations``, one per grade of
    :data:`GRADES` and one per teacher of ``samples`` (teacher name → question → its explanation), in that
    order, and ``sources`` naming each. Deterministic given ``seed``.

    Raises ValueError naming the first question a teacher did not explain.
    """
    rng = random.Random(f"rlt-toy-graded:{seed}")
    golds = [gold_explanation(numbers_of(example.question)) for example in examples]
    out = []
    for i, example in enumerate(examples):
        numbers = numbers_of(example.question)
        made = {GOLD: golds[i], "unrelated": golds[(i + 1) % len(golds)] if len(golds) > 1 else ""}
        explanations = [made[grade] if grade in made else corrupt(numbers, grade, rng) for grade in GRADES]
        for teacher, explained in samples.items():
            if example.question not in explained:
                raise ValueError(f"{teacher} has no explanation of {example.question!r}")
            explanations.append(explained[example.question])
        out.append({"question": example.question, "solution": example.solution, "explanations": explanations,
                    "sources": [*GRADES, *samples]})
    return out


__all__ = ["GRADES", "graded_rows"]
