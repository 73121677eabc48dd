"""``rlt toy init``: build the offline toy world (tiny models, synthetic addition task).

    rlt toy init --output_dir DIR [--operands 3 --low 50 --high 99 --n_train 20000 --n_heldout 500
                              --model_size tiny --pretrain_max_steps 3000 --seed 0] [--config world.yaml]

Writes a base model (char tokenizer + Qwen2 pretrained on addition facts; ``--pretrain_max_steps 0``
leaves it untrained) and the task's data files into DIR (see
:mod:`rlt.toy.world`); running it again with the same settings reuses the world already there.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rlt.commands.arguments import overwrite_option
from rlt.commands.parsing import parse_command, setup_logging
from rlt.run_folder import RunFolder, settings
from rlt.toy.world import ToyWorld, ToyWorldConfig, build_toy_world, check_base_model

logger = logging.getLogger(__name__)

USAGE = "usage: rlt toy init --output_dir DIR [--config FILE.yaml] [--key value ...]"
SUBCOMMANDS = ("init",)


@dataclass
class ToyInitArguments:
    output_dir: str = field(metadata={"help": "Folder to build the toy world in (reused if it already holds it)."})
    overwrite: bool = overwrite_option()


def init(args: ToyInitArguments, config: ToyWorldConfig) -> ToyWorld:
    """Build the world in its run folder (:mod:`rlt.run_folder`), or find it there, built."""
    world = ToyWorld(Path(args.output_dir), config)
    if config.base_model:
        check_base_model(config.base_model)  # before the folder is claimed: a run that cannot start writes nothing
    work = {"world": settings({"base_model": config.base_model}, world=config)}
    with RunFolder(world.root, "toy init").claim(work, overwrite=args.overwrite, expected=(world.manifest,)) as claim:
        if claim.finished:
            logger.info("%s holds this toy world: nothing to do", world.root)
            return world
        claim.start(arguments=args, world=config)
        world = build_toy_world(world.root, config)
        claim.finish()
    return world


def parse(argv: Sequence[str] | None) -> tuple[ToyInitArguments, ToyWorldConfig]:
    """Options of ``rlt toy init`` (``argv`` without the subcommand)."""
    return parse_command(argv, [ToyInitArguments, ToyWorldConfig], "toy init", __doc__.split("\n\n")[0])


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
    init(*parse(argv[1:]))
    return 0
