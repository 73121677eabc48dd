"""Run ``rlt`` commands as a pipeline of stages: dependencies, parallel workers, resume, measurements.

Each stage is one ``rlt <command> ...`` run in its own process, so that it is exactly the command a
user would type (the demo writes them into its report), its peak memory can be read from the
kernel (``wait4``'s ``ru_maxrss``), and independent stages can share the machine's cores: with W
workers each stage gets ``cores / W`` threads (tiny models gain little from more threads per
process), except a stage that starts alone: when nothing else runs or is ready, nothing else can
start before it ends, so it gets every core (the toy world's pretraining, which every other
stage of the demo waits for).
A finished stage leaves a marker holding its command line; a pipeline started again skips the stages
marked with the same command line (another one runs again, and its command finds its folder as
:mod:`rlt.run_folder` says: finished, resumable, or another run's).
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rich.console import Console
from rich.live import Live
from rich.table import Table

from rlt.errors import UserError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Stage:
    name: str
    argv: tuple[str, ...]  # arguments of `rlt`, e.g. ("student-sft", "--model", ...)
    needs: tuple[str, ...] = ()
    description: str = ""

    @property
    def command(self) -> str:
        return shlex.join(["rlt", *self.argv])


@dataclass
class StageResult:
    name: str
    seconds: float
    peak_memory_mib: float
    cpu_seconds: float = 0.0  # user + system time of its process: the work it gave the cores
    resumed: bool = False  # finished by an earlier run of the pipeline


@dataclass
class _Running:
    stage: Stage
    process: subprocess.Popen
    started: float
    log: Path


class StageRefused(UserError):
    """A stage's command stopped on a user's mistake (exit status 2: its folder holds another run, an option
    is wrong): the demo reports the command's own one line."""

    def __init__(self, stage: Stage, log: Path):
        errors = [line for line in log.read_text(errors="replace").splitlines() if line.startswith("error: ")]
        reason = errors[-1].removeprefix("error: ") if errors else "see its log"
        super().__init__(f"stage {stage.name} stopped: {reason} (its log: {log})")


class StageFailed(RuntimeError):
    """A stage's command crashed: its exit code, command and the end of its log."""

    def __init__(self, stage: Stage, log: Path, code: int):
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-25:]) if log.exists() else ""
        super().__init__(f"stage {stage.name!r} failed (exit code {code}); its log: {log}\n"
                         f"command: {stage.command}\n--- last lines ---\n{tail}")


@dataclass
class Pipeline:
    stages: Sequence[Stage]
    state_dir: Path  # logs and finished-stage markers
    workers: int = 2
    results: dict[str, StageResult] = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = [s.name for s in self.stages]
        if len(set(names)) != len(names):
            raise ValueError("stage names must be unique")
        unknown = {n for s in self.stages for n in s.needs} - set(names)
        if unknown:
            raise ValueError(f"stages depend on unknown stages: {sorted(unknown)}")
        self.state_dir.mkdir(parents=True, exist_ok=True)

    def run(self) -> dict[str, StageResult]:
        """Run every stage not finished yet, at most ``workers`` at a time, in dependency order."""
        self._load_finished()
        pending = [s for s in self.stages if s.name not in self.results]
        running: list[_Running] = []
        cores = os.cpu_count() or 1
        with Live(self._table(pending, running), console=Console(stderr=True), refresh_per_second=2,
                  transient=False, redirect_stdout=False, redirect_stderr=False) as live:
            try:
                while pending or running:
                    ready = self._ready(pending, running)
                    alone = len(ready) == 1 and not running
                    for stage in ready:
                        running.append(self._start(stage, cores if alone else max(1, cores // self.workers)))
                        pending.remove(stage)
                    running = [r for r in running if not self._finished(r)]
                    live.update(self._table(pending, running))
                    time.sleep(0.2)
            except BaseException:  # a failed stage or Ctrl-C: stop the others too (their markers stay absent)
                for run in running:
                    run.process.kill()
                    run.process.wait()
                raise
        return self.results

    # Scheduling ------------------------------------------------------------------------------

    def _ready(self, pending: list[Stage], running: list[_Running]) -> list[Stage]:
        free = self.workers - len(running)
        ready = [s for s in pending if all(n in self.results for n in s.needs)]
        if not ready and not running and pending:
            raise RuntimeError(f"stages wait on each other: {[s.name for s in pending]}")
        return ready[:max(free, 0)]

    def _start(self, stage: Stage, threads: int) -> _Running:
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "HF_HUB_OFFLINE": "1",
               "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1"}
        log = self.state_dir / f"{stage.name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)  # stage names may hold folders ("seed0/world")
        with log.open("w") as out:
            out.write(f"$ OMP_NUM_THREADS={threads} {stage.command}\n")
            out.flush()
            process = subprocess.Popen([sys.executable, "-m", "rlt.cli", *stage.argv], env=env, stdout=out,
                                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        logger.info("started %s (%d threads): %s", stage.name, threads, stage.command)
        return _Running(stage, process, time.perf_counter(), log)

    def _finished(self, run: _Running) -> bool:
        """Reap ``run`` if it ended (wait4 gives its own peak memory and CPU time); raise if it failed."""
        pid, status, usage = os.wait4(run.process.pid, os.WNOHANG)
        if pid == 0:
            return False
        run.process.returncode = code = os.waitstatus_to_exitcode(status)
        if code == 2:
            raise StageRefused(run.stage, run.log)
        if code != 0:
            raise StageFailed(run.stage, run.log, code)
        result = StageResult(run.stage.name, time.perf_counter() - run.started, usage.ru_maxrss / 1024,
                             usage.ru_utime + usage.ru_stime)
        self.results[run.stage.name] = result
        (self.state_dir / f"{run.stage.name}.done").write_text(json.dumps({**asdict(result), "argv": run.stage.argv}))
        logger.info("finished %s in %.0f s (peak %.0f MiB)", result.name, result.seconds, result.peak_memory_mib)
        return True

    def _load_finished(self) -> None:
        for stage in self.stages:
            marker = self.state_dir / f"{stage.name}.done"
            if not marker.exists():
                continue
            recorded = json.loads(marker.read_text())
            if tuple(recorded.pop("argv", ())) == stage.argv:
                self.results[stage.name] = StageResult(**{**recorded, "resumed": True})

    # Display ---------------------------------------------------------------------------------

    def _table(self, pending: list[Stage], running: list[_Running]) -> Table:
        table = Table(title="rlt pipeline", expand=False)
        for column in ("stage", "status", "seconds", "what"):
            table.add_column(column)
        now = time.perf_counter()
        active = {r.stage.name: r for r in running}
        for stage in self.stages:
            if stage.name in self.results:
                result = self.results[stage.name]
                status, seconds = ("resumed" if result.resumed else "done"), f"{result.seconds:.0f}"
            elif stage.name in active:
                status, seconds = "running", f"{now - active[stage.name].started:.0f}"
            else:
                status, seconds = "waiting", ""
            table.add_row(stage.name, status, seconds, stage.description)
        return table
