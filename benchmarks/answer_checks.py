"""Benchmark: rlt's answer check against someone else's verdicts, on the real files of ../shared/data.

1. **Sky-T1 traces on MATH-500** (a Sky-T1 model's generations, judged by the Qwen2.5-Math evaluator that
   produced the file): rlt's verdict on each generation (:func:`rlt.problems.prediction`, then
   :func:`rlt.answers.answers_match` against the row's reference answer) against the file's ``score``.
2. **AIME 2024's and GSM8K's worked solutions** against their own reference answers: rlt reads the answer of
   each worked solution and checks it against the row's ``answer`` (AIME) or ``#### n`` line (GSM8K). Every
   solution is right, so every disagreement is rlt's (or a solution that never states its answer).

Prints the agreement of each, then every disagreement (row, what rlt read, the reference, the other verdict),
for docs/answer-checks.md. ``--smoke`` checks the first 20 rows of each.

    python benchmarks/answer_checks.py [--smoke] [--shared_data ../shared/data]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from rlt.answers import answers_match, reference_answer
from rlt.data import read_records
from rlt.formats import FormatConfig
from rlt.problems import prediction

ROOT = Path(__file__).resolve().parents[1]


def _verdict(text: str, reference: str) -> tuple[bool, str | None]:
    answer = prediction(text, FormatConfig(), "math")
    return answers_match(answer, reference, "math"), answer


def sky_t1(folder: Path, limit: int | None) -> tuple[int, list[dict], int]:
    """rlt's verdicts on the Sky-T1 generations against the file's own; and how many generations rlt reads no
    answer in (no solution section and no box: by design, rlt.answers)."""
    file = next(iter(sorted((folder / "reasoning_traces_sky_t1").rglob("*.jsonl"))))
    rows, disagreements, unread = 0, [], 0
    for ref, record in read_records(file):
        if limit is not None and rows >= limit:
            break
        reference = reference_answer(record)
        ours, read = _verdict(record["code"][0], reference)
        theirs = bool(record["score"][0])
        rows += 1
        unread += read is None
        if ours != theirs:
            disagreements.append({"row": str(ref), "rlt_read": read, "reference": reference,
                                  "their_read": record["pred"][0], "rlt": ours, "theirs": theirs})
    return rows, disagreements, unread


def worked_solutions(file: Path, solution_key: str, limit: int | None) -> tuple[int, list[dict]]:
    """rlt's verdict on each worked solution against the row's reference answer (all are right)."""
    rows, disagreements = 0, []
    for ref, record in read_records(file):
        if limit is not None and rows >= limit:
            break
        reference = reference_answer(record)
        ours, read = _verdict(record[solution_key], reference)
        rows += 1
        if not ours:
            disagreements.append({"row": str(ref), "rlt_read": read, "reference": reference})
    return rows, disagreements


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared_data", type=Path,
                        default=Path(os.environ.get("RLT_SHARED_DATA", ROOT.parent / "shared" / "data")))
    parser.add_argument("--smoke", action="store_true", help="The first 20 rows of each file.")
    args = parser.parse_args()
    limit = 20 if args.smoke else None
    generations, sky_t1_disagreements, unread = sky_t1(args.shared_data, limit)
    read = generations - unread
    differ = sum(d["rlt_read"] is not None for d in sky_t1_disagreements)
    checks = {
        "Sky-T1 generations on MATH-500 vs their score": (generations, sky_t1_disagreements),
        "AIME 2024 solutions vs their answers": worked_solutions(args.shared_data / "aime24" / "test.jsonl",
                                                                 "solution", limit),
        "GSM8K test solutions vs their #### answers": worked_solutions(args.shared_data / "gsm8k" / "test.jsonl",
                                                                      "answer", limit),
    }
    for name, (rows, disagreements) in checks.items():
        print(f"\n{name}: {rows - len(disagreements)} of {rows} agree ({1 - len(disagreements) / rows:.1%})")
        for item in disagreements:
            print("  " + ", ".join(f"{key}={value!r}" for key, value in item.items()))
    print(f"\nSky-T1: rlt reads no answer in {unread} of {generations} generations (prose, no solution section or "
          f"box); where it reads one, {read - differ} of {read} agree ({(read - differ) / read:.1%})")
    print("\nanswer check benchmark: " + ", ".join(f"{name.split(' ')[0]} {1 - len(d) / rows:.3f} ({len(d)} of {rows} "
                                                   "differ)" for name, (rows, d) in checks.items()))


if __name__ == "__main__":
    main()
