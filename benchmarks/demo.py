"""Benchmark: wall time and peak memory of each stage of `rlt demo --quick` and of the full demo.

Runs both demos (unless ``--only``) in fresh folders and prints, per stage, its wall time, CPU time and
the peak resident memory of its process (from the report), then each demo's total wall time,
the CPU time of all its stages over the cores (with those CPU times, no schedule finishes sooner) and its four
accuracies. Stages run two at a time where independent, so stage times add up to more
than the wall time.

    python benchmarks/demo.py [--output_dir runs/demo_benchmark] [--only quick|full] [--budgets YAML] [--smoke]
                              [-- DEMO FLAGS]

Flags after ``--`` go to ``rlt demo`` (``-- --cold_start true`` times the cold start's stages too).

``--smoke``: the quick demo alone (unless ``--only full``) on the tests' tiny budgets
(tests/data/demo_smoke_budgets.yaml), in a temporary folder unless ``--output_dir``, in about a minute: that the
script runs (its figures mean nothing then).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from rlt.cli import main as rlt
from rlt.data import read_json
from rlt.demo.report import ReportFiles
from rlt.demo.stages import DemoOutputs

SMOKE_BUDGETS = Path(__file__).resolve().parents[1] / "tests" / "data" / "demo_smoke_budgets.yaml"


def run_demo(folder: Path, quick: bool, budgets: Path | None = None, flags: Sequence[str] = ()) -> dict:
    code = rlt(["demo", "--quick", str(quick).lower(), "--output_dir", str(folder), "--overwrite", "true",
                *(["--budgets", str(budgets)] if budgets else []), *flags])
    if code:
        raise SystemExit(code)  # the demo said why, on stderr
    report = ReportFiles(DemoOutputs(folder).report)
    return {"summary": report.read_summary(), "stages": read_json(report.stages)}


def print_demo(name: str, result: dict) -> None:
    print(f"\n{name}: {result['summary']['wall_seconds'] / 60:.1f} min wall")
    print(f"{'stage':<36}{'seconds':>10}{'CPU s':>10}{'peak MiB':>10}")
    for stage, f in result["stages"].items():
        print(f"{stage:<36}{f['seconds']:>10.0f}{f['cpu_seconds']:>10.0f}{f['peak_memory_mib']:>10.0f}")
    cores = os.cpu_count() or 1
    work = sum(figures["cpu_seconds"] for figures in result["stages"].values()) / 60
    print(f"stage work: {work:.1f} CPU-minutes, so at least {work / cores:.1f} min wall on {cores} cores")
    accuracy = result["summary"]["accuracy"]
    print("accuracy: " + ", ".join(f"{k} {v['mean']:.3f}" for k, v in accuracy.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output_dir", type=Path,
                        help="Default: runs/demo_benchmark (--smoke: a temporary folder).")
    parser.add_argument("--only", choices=["quick", "full"])
    parser.add_argument("--budgets", type=Path, help="`rlt demo --budgets`: the demos' budgets YAML "
                        "(default: the shipped configs/toy/demo_budgets.yaml).")
    parser.add_argument("--smoke", action="store_true", help="The quick demo (unless --only full) on the tests' "
                        "tiny budgets (about a minute): that the script runs.")
    parser.add_argument("demo_flags", nargs=argparse.REMAINDER, help="-- FLAGS: more flags of `rlt demo`.")
    args = parser.parse_args()
    args.demo_flags = args.demo_flags[1:] if args.demo_flags[:1] == ["--"] else args.demo_flags
    if args.smoke:
        args.budgets, args.only = args.budgets or SMOKE_BUDGETS, args.only or "quick"
        if args.output_dir is None:
            smoke_dir = tempfile.TemporaryDirectory()  # removed when main returns
            args.output_dir = Path(smoke_dir.name)
    args.output_dir = args.output_dir or Path("runs/demo_benchmark")
    results = {name: run_demo(args.output_dir / name, quick=name == "quick", budgets=args.budgets,
                              flags=args.demo_flags)
               for name in ("quick", "full") if args.only in (None, name)}
    for name, result in results.items():
        print_demo(name, result)
    print("\ndemo benchmark: " + ", ".join(
        f"{name} {r['summary']['wall_seconds'] / 60:.1f} min, peak "
        f"{max(s['peak_memory_mib'] for s in r['stages'].values()):.0f} MiB" for name, r in results.items()))


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
