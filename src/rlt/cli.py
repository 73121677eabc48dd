"""``rlt <command> [--config config.yaml] [--key value ...]``: dispatch to the commands.

Each command is a module of :mod:`rlt.commands` with a ``main(argv)``; it is imported only when run,
so ``rlt --help`` stays fast. A user's mistake (:class:`rlt.errors.UserError`) is printed as one line,
``error: …``, with exit status 2, and so is a full disk; Ctrl-C is one line too (exit status 130). ``--debug``
(anywhere on the line) or ``RLT_DEBUG=1`` shows the traceback.
"""

from __future__ import annotations

import errno
import importlib
import os
import sys

from rlt.errors import UserError

COMMANDS = {
    "teacher-sft": ("rlt.commands.teacher_sft", "Warm up a teacher: SFT on the teacher format (loss on explanations)."),
    "teacher-rl": ("rlt.commands.teacher_rl", "Train a teacher with GRPO on the RLT reward (frozen student judge)."),
    "student-sft": ("rlt.commands.student_sft", "Distil a student: SFT on question → thought + solution records."),
    "student-rl": ("rlt.commands.student_rl", "RL of a student on reference answers (verifiable reward, GRPO)."),
    "score": ("rlt.commands.score", "Score explanations with the RLT reward (per row, or best-of-k)."),
    "evaluate": ("rlt.commands.evaluate", "Generate answers on a benchmark and report pass@1 (math-verify)."),
    "distill": ("rlt.commands.distill", "A teacher explains each question k times; keep all, or the best by reward."),
    "demo": ("rlt.commands.demo", "The paper's claim in miniature, offline on a CPU: teachers, students, a report."),
    "toy": ("rlt.commands.toy", "Build the offline toy world (tiny models, synthetic task)."),
}


def _usage() -> str:
    lines = ["usage: rlt <command> [--config FILE.yaml] [--key value ...]", "", "commands:"]
    lines += [f"  {name:<14}{summary}" for name, (_, summary) in COMMANDS.items()]
    lines += ["", "Run `rlt <command> --help` for a command's options; --debug shows tracebacks."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("RLT_DEBUG", "") not in ("", "0")
    argv = [arg for arg in argv if arg != "--debug"]
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"error: unknown command {command!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[command][0])
    try:
        status = module.main(rest) or 0
    except UserError as error:
        if debug:
            raise
        print(f"error: {error}", file=sys.stderr)
        status = 2
    except KeyboardInterrupt:
        if debug:
            raise
        print("interrupted: what was saved stays; run the same command again to continue", file=sys.stderr)
        return 130
    except OSError as error:
        if debug or error.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        where = f" writing {error.filename}" if error.filename else ""
        print(f"error: no space left on the disk{where}: what was saved before stays; free some space and run the "
              "same command again to continue", file=sys.stderr)
        return 2
    _leave_the_process_group()
    return status


def _leave_the_process_group() -> None:
    """End a distributed run's process group before the interpreter exits. Left to the interpreter's teardown,
    gloo's threads can outlive it, and a process that has finished and saved aborts ("terminate called without an
    active exception"), failing the whole torchrun. Only where every process reached the end alike (a finished
    command, or a refusal all share): after an unexpected error the others may still wait on this one."""
    distributed = sys.modules.get("torch.distributed")
    if distributed is not None and distributed.is_available() and distributed.is_initialized():
        distributed.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
