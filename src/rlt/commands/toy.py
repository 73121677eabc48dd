"""``rlt toy init``: build the offline toy world (tiny models, synthetic addition task).

    rlt toy init --output_dir DIR [--operands 3 --low 50 --high 99 --n_train 20000 --n_heldout 500
                              --model_size tiny --pretrain_max_steps 3000 --seed 0] [--config configs/toy/world.yaml]

Writes a base model (char tokenizer + Qwen2 pretrained on addition facts; ``--pretrain_max_steps 0``
leaves it untrained) and the task's data files into DIR (see
:mod:`rlt.toy.world`); running it again with the same settings reuses the world already there.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

from rlt.config import parse_command, setup_logging
from rlt.toy.world import ToyWorldConfig, build_toy_world

USAGE = "usage: rlt toy init --output_dir DIR [--config FILE.yaml] [--key value ...]"
SUBCOMMANDS = ("init",)


@dataclass
class ToyInitArguments:
    output_dir: str = field(metadata={"help": "Folder to build the toy world in (reused if it already holds it)."})


def parse(argv: Sequence[str] | None) -> tuple[ToyInitArguments, ToyWorldConfig]:
    """Options of ``rlt toy init`` (``argv`` without the subcommand)."""
    return parse_command(argv, [ToyInitArguments, ToyWorldConfig], "toy init", __doc__.split("\n\n")[0],
                         renamed={"--output": "--output_dir"})


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    if not argv or argv[0] not in SUBCOMMANDS:
        got = f"unknown subcommand {argv[0]!r}" if argv else "missing subcommand"
        print(f"error: rlt toy: {got} (subcommands: {', '.join(SUBCOMMANDS)})\n{USAGE}", file=sys.stderr)
        return 2
    setup_logging()
    args, config = parse(argv[1:])
    build_toy_world(args.output_dir, config)
    return 0
