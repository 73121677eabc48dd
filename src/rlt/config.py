"""Command-line and YAML parsing for every command, in TRL's conventions.

``rlt <command> --config config.yaml --key value``: the YAML file sets defaults, command-line flags
override them, and an unknown key in either is an error (TRL's ``TrlParser``). Every parsing error (an
unknown or malformed option, a value a config refuses, a missing config file) is a
:class:`~rlt.errors.UserError`: one line, no usage dump, no traceback.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import yaml
from transformers import TrainingArguments
from trl import TrlParser

from rlt.errors import UserError
from rlt.training import check_training_arguments

logger = logging.getLogger(__name__)


class _Parser(TrlParser):
    def error(self, message: str):  # argparse's hook: it would print the whole usage and exit
        raise UserError(f"{message} (`{self.prog} --help` lists the options)")


def parse_command(
    argv: Sequence[str] | None,
    dataclass_types: Sequence[type],
    prog: str,
    description: str,
    defaults: dict[str, Any] | None = None,
    renamed: dict[str, str] | None = None,
) -> tuple[Any, ...]:
    """Parse ``argv`` into the dataclasses; ``defaults`` replace the dataclasses' own (YAML and flags win), and
    make a required field (``--dataset``) optional.

    ``renamed`` maps an old flag to its new name: it still works for one release, with a warning.
    """
    argv = _renamed(list(sys.argv[1:] if argv is None else argv), renamed or {}, prog)
    _check_config_file(argv)
    parser = _Parser(dataclass_types, prog=f"rlt {prog}", description=description)
    if any(issubclass(t, TrainingArguments) for t in dataclass_types) and not torch.cuda.is_available():
        # TRL defaults to bf16, which fails on a CPU-only machine, and to gradient checkpointing, which buys
        # nothing for CPU-sized models and warns; a config file or flag may still set either. Without use_cpu,
        # accelerate leaves processes started by torchrun unaware of each other (each trains alone, all in one
        # folder); with it they form one gloo group, as on GPUs.
        parser.set_defaults(bf16=False, gradient_checkpointing=False, use_cpu=True)
    parser.set_defaults_with_config(**(defaults or {}))  # a field given a default is no longer required
    try:
        parsed = parser.parse_args_and_config(args=argv)
    except (ValueError, OSError) as error:  # a config's own check (__post_init__), an unknown key, a missing file
        raise UserError(str(error)) from error
    for config in parsed:
        if isinstance(config, TrainingArguments):
            check_training_arguments(config)
    return parsed


def _check_config_file(argv: list[str]) -> None:
    """The ``--config`` file is readable UTF-8 YAML holding a mapping; TRL's parser would fail on any of these
    with a traceback that does not name the file."""
    if "--config" not in argv[:-1]:
        return
    path = Path(argv[argv.index("--config") + 1])
    try:
        text = path.read_bytes().decode("utf-8")
        config = yaml.safe_load(text)
    except OSError as error:
        raise UserError(f"--config {path}: {error.strerror or error}") from None
    except UnicodeDecodeError as error:
        raise UserError(f"--config {path}: not UTF-8 text (byte 0x{error.object[error.start]:02x} at position "
                        f"{error.start})") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or error
        raise UserError(f"--config {path}{where}: not valid YAML ({problem})") from None
    if not isinstance(config, dict):
        raise UserError(f"--config {path}: expected a mapping of option: value, got {type(config).__name__}")


def _renamed(argv: list[str], renamed: dict[str, str], prog: str) -> list[str]:
    out = []
    for arg in argv:
        flag, equals, value = arg.partition("=")
        if flag in renamed:
            logger.warning("rlt %s: %s is deprecated and goes in the next release: use %s", prog, flag, renamed[flag])
            arg = renamed[flag] + equals + value
        out.append(arg)
    return out


def configs_dir() -> Path:
    """The shipped configs: ``configs/`` of a source checkout, else ``<prefix>/share/rlt/configs``."""
    checkout = Path(__file__).resolve().parents[2] / "configs"
    return checkout if checkout.is_dir() else Path(sys.prefix) / "share" / "rlt" / "configs"


def setup_logging(level: int = logging.INFO) -> None:
    """Console logging through rich, once per process."""
    from rich.logging import RichHandler

    root = logging.getLogger()
    if not any(isinstance(h, RichHandler) for h in root.handlers):
        logging.basicConfig(level=level, format="%(message)s", datefmt="[%X]", handlers=[RichHandler()])
