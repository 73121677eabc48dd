"""Benchmark: wall time and peak memory of each stage of `rlt demo --quick` and of the full demo.

Runs both demos (unless ``--only``) in fresh folders and prints, per stage, its wall time, CPU time and
the peak resident memory of its process (from the report), then each demo's total wall time,
the CPU time of all its stages over the cores (with those CPU times, no schedule finishes sooner) and its four
accuracies. Stages run two at a time where independent, so stage times add up to more
than the wall time.

    python benchmarks/demo.py [--output_dir runs/demo_benchmark] [--only quick|full]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from rlt.cli import main as rlt
from rlt.data import read_json
from rlt.demo.report import ReportFiles
from rlt.demo.stages import DemoOutputs


def run_demo(folder: Path, quick: bool) -> dict:
    rlt(["demo", "--quick", str(quick).lower(), "--output_dir", str(folder), "--overwrite", "true"])
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
    print("accuracy: " + ", ".join(f"{k} {v:.3f}" for k, v in accuracy.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output_dir", type=Path, default=Path("runs/demo_benchmark"))
    parser.add_argument("--only", choices=["quick", "full"])
    args = parser.parse_args()
    results = {name: run_demo(args.output_dir / name, quick=name == "quick")
               for name in ("quick", "full") if args.only in (None, name)}
    for name, result in results.items():
        print_demo(name, result)
    print("\ndemo benchmark: " + ", ".join(
        f"{name} {r['summary']['wall_seconds'] / 60:.1f} min, peak "
        f"{max(s['peak_memory_mib'] for s in r['stages'].values()):.0f} MiB" for name, r in results.items()))


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
