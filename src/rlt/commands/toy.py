"""``rlt toy``: the offline toy world (tiny models, synthetic addition task) and its graded explanations.

    rlt toy init --output_dir DIR [--operands 3 --low 50 --high 99 --n_train 20000 --n_heldout 500
                              --model_size tiny --pretrain_max_steps 3000 --seed 0] [--config world.yaml]
    rlt toy graded --samples NAME=PATH[,NAME=PATH] --output_dir DIR [--seed 0]

``init`` writes a base model (char tokenizer + Qwen2 pretrained on addition facts; ``--pretrain_max_steps 0``
leaves it untrained) and the task's data files into DIR (see :mod:`rlt.toy.world`); running it again with
the same settings reuses the world already there.

``graded`` writes ``DIR/graded.jsonl``: for each question of the first samples file (rows a teacher explained,
such as the messages file of an ``rlt distill`` folder), explanations of graded quality (:mod:`rlt.toy.graded`)
and each named teacher's own, for ``rlt score --reward_buckets`` to pool and cut by reward.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rlt.commands.arguments import overwrite_option
from rlt.commands.parsing import parse_command, setup_logging
from rlt.data import normalize_record, read_input, read_jsonl, write_jsonl
from rlt.errors import UserError
from rlt.run_folder import OutputFile, RunFolder, settings
from rlt.toy.graded import GRADES, graded_rows
from rlt.toy.world import ToyWorld, ToyWorldConfig, build_toy_world, check_base_model

logger = logging.getLogger(__name__)

USAGE = ("usage: rlt toy init --output_dir DIR [--config FILE.yaml] [--key value ...]\n"
         "       rlt toy graded --samples NAME=PATH[,NAME=PATH] --output_dir DIR")


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


@dataclass
class ToyGradedArguments:
    samples: str = field(metadata={
        "help": "Teachers' explanations, NAME=PATH comma-separated: rows with question, solution and "
                "reasoning_trace (an rlt distill folder's messages file). The first file's questions are graded."})
    output_dir: str = field(metadata={"help": "Folder to write graded.jsonl in."})
    seed: int = field(default=0, metadata={"help": "Seeds the corruptions (which step slips, by how much)."})
    overwrite: bool = overwrite_option()

    def named_samples(self) -> dict[str, str]:
        pairs = [item.partition("=") for item in self.samples.split(",")]
        if any(not name or not equals or not path for name, equals, path in pairs):
            raise UserError(f"samples takes NAME=PATH items, comma-separated, got {self.samples!r}")
        names = [name for name, _, _ in pairs]
        for name in names:  # a row's sources name each explanation: two of one name could not be told apart
            if name in GRADES or names.count(name) > 1:
                taken = "a grade's name" if name in GRADES else "given twice"
                raise UserError(f"samples: the name {name!r} is {taken}; give each file its own name")
        return {name: path for name, _, path in pairs}


@dataclass(frozen=True)
class GradedOutputs:
    """The files of an ``rlt toy graded`` run folder."""

    folder: Path
    graded = OutputFile("graded.jsonl")

    def read_graded(self) -> list[dict]:
        return read_jsonl(self.graded)


def graded(args: ToyGradedArguments) -> GradedOutputs:
    """Read every teacher's explanations (a bad row is one line naming it), then grade the first file's questions."""
    outputs = GradedOutputs(Path(args.output_dir))
    named = args.named_samples()
    explained = {name: read_input(path, normalize_record).items for name, path in named.items()}
    samples = {name: {e.question: e.reasoning_trace or "" for e in rows} for name, rows in explained.items()}
    work = {"graded": settings(named, seed=args.seed)}
    with RunFolder(outputs.folder, "toy graded").claim(work, overwrite=args.overwrite,
                                                       expected=(outputs.graded,)) as claim:
        if claim.finished:
            logger.info("%s holds these graded explanations: nothing to do", outputs.folder)
            return outputs
        claim.start(arguments=args)
        try:
            rows = graded_rows(next(iter(explained.values())), samples, seed=args.seed)
        except ValueError as error:
            raise UserError(f"samples: {error}") from None
        write_jsonl(outputs.graded, rows)
        logger.info("wrote %s: %d questions, %d explanations each", outputs.graded, len(rows),
                    len(rows[0]["explanations"]) if rows else 0)
        claim.finish()
    return outputs


def parse_graded(argv: Sequence[str] | None) -> tuple[ToyGradedArguments]:
    """Options of ``rlt toy graded`` (``argv`` without the subcommand)."""
    return parse_command(argv, [ToyGradedArguments], "toy graded", __doc__.split("\n\n")[0])


SUBCOMMANDS = {"init": lambda argv: init(*parse(argv)), "graded": lambda argv: graded(*parse_graded(argv))}


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
    SUBCOMMANDS[argv[0]](argv[1:])
    return 0
