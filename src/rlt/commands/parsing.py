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
    presets: dict[str, Any] | None = None,
) -> tuple[Any, ...]:
    """Parse ``argv`` into the dataclasses, whose defaults are the command's. ``presets`` (a benchmark's, in
    ``evaluate``) replace them (YAML and flags win), and make a required field (``--dataset``) optional."""
    argv = list(sys.argv[1:] if argv is None else argv)
    _check_config_file(argv)
    parser = _Parser(dataclass_types, prog=f"rlt {prog}", description=description)
    on_cpu = any(issubclass(t, TrainingArguments) for t in dataclass_types) and not torch.cuda.is_available()
    if on_cpu:
        parser.set_defaults(**_CPU_DEFAULTS)
    parser.set_defaults_with_config(**(presets or {}))  # a field given a default is no longer required
    try:
        parsed = parser.parse_args_and_config(args=argv)
    except (ValueError, OSError) as error:  # a config's own check (__post_init__), an unknown key, a missing file
        raise UserError(str(error)) from error
    for config in parsed:
        if isinstance(config, TrainingArguments):
            check_training_arguments(config)
            if on_cpu:
                _log_cpu_training(config)
    return parsed


# TRL's training defaults assume a GPU. On a machine without CUDA: bf16, which fails there, off; activation
# (gradient) checkpointing, which buys nothing for CPU-sized models, off; use_cpu on, without which accelerate
# leaves the processes torchrun starts unaware of each other (each trains alone, all in one folder), with which
# they form one gloo group, as on GPUs. A config file or flag still sets any of them.
CPU_TRAINING = {"bf16": False, "activation_checkpointing": False, "use_cpu": True}
# How the parser gets there. transformers reads TRL's `gradient_checkpointing: True`, a deprecated name, into an
# unset `activation_checkpointing`, with a warning. Unsetting the old name instead of setting the new one turns
# checkpointing off without the warning, and still lets a config or flag of either name turn it on (a new name
# set here would silently win over a user's `--gradient_checkpointing true`).
_CPU_DEFAULTS = {"bf16": False, "gradient_checkpointing": None, "use_cpu": True}


def _log_cpu_training(config: TrainingArguments) -> None:
    applied = [f"{name}={value}" for name, value in CPU_TRAINING.items() if getattr(config, name) == value]
    if applied:
        logger.info("no CUDA device: training with %s (a config or flag sets them otherwise)", ", ".join(applied))


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


def configs_dir() -> Path:
    """The shipped configs: ``configs/`` of a source checkout, else ``<prefix>/share/rlt/configs``."""
    checkout = Path(__file__).resolve().parents[3] / "configs"
    return checkout if checkout.is_dir() else Path(sys.prefix) / "share" / "rlt" / "configs"


def setup_logging(level: int = logging.INFO) -> None:
    """Console logging through rich, once per process."""
    from rich.logging import RichHandler

    root = logging.getLogger()
    if not any(isinstance(h, RichHandler) for h in root.handlers):
        logging.basicConfig(level=level, format="%(message)s", datefmt="[%X]", handlers=[RichHandler()])
