"""The toy world: everything an RLT pipeline needs, built offline in seconds on a CPU.

``build_toy_world(folder, config)`` writes::

    base_model/                     char tokenizer + Qwen2 pretrained on addition facts (rlt.toy.pretraining),
                                    loaded with AutoTokenizer / AutoModelForCausalLM; or a copy of the
                                    pretrained base named by ``base_model`` (e.g. another world's)
    data/train.jsonl                question, solution, reasoning_trace (gold)
    data/heldout.jsonl              the same for held-out questions (never in train)
    data/teacher_warmup.jsonl       the teacher's SFT rows: gold and restated-answer traces (WARMUP_MIX), with kind
    data/answer_only.jsonl          student rows with an empty trace (the "answer only" bound)
    data/explanations_by_kind.jsonl question, solution, explanation, kind: gold and every corruption
                                    for up to 100 held-out questions (ground truth for the reward)
    world.json                      the config, the file list and the pretraining's steps and fact accuracy,
                                    written last

Every file is a function of the config alone (and of the base model it names, if it names one), so a
world is rebuilt identically from its ``world.json``, and a folder that already holds the world asked
for is reused as it is.
"""

from __future__ import annotations

import json
import logging
import random
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rlt.data import Example, write_json, write_jsonl
from rlt.errors import UserError
from rlt.modeling import load_tokenizer
from rlt.run_folder import LOCK, RUN_INFO
from rlt.toy.models import MODEL_SIZES, build_causal_lm, save_model_and_tokenizer
from rlt.toy.pretraining import PretrainingConfig, PretrainingResult, fact_accuracy, pretrain
from rlt.toy.task import (
    CORRUPTIONS,
    GOLD,
    AdditionTask,
    answer_only_rows,
    corrupt,
    gold_explanation,
    numbers_of,
    teacher_warmup_rows,
)
from rlt.toy.tokenizer import build_char_tokenizer

logger = logging.getLogger(__name__)

MANIFEST = "world.json"
# The warm-up teacher's explanations: half gold, half only stating the answer it was shown ("The answer is
# 149."), which is what a teacher that knows the answer tends to write. A student taught by it states an
# answer without working half the time, and then guesses as badly as the answer-only student: it cannot
# add three numbers in its head. RL on the RLT reward has to teach the teacher to write the running sum out.
# Other mixes tried, and why they failed: docs/toy-world.md.
WARMUP_MIX = {GOLD: 0.5, "restated_answer": 0.5}
KIND_QUESTIONS = 100
FILES = {
    "base_model": "base_model",
    "train": "data/train.jsonl",
    "heldout": "data/heldout.jsonl",
    "teacher_warmup": "data/teacher_warmup.jsonl",
    "answer_only": "data/answer_only.jsonl",
    "explanations_by_kind": "data/explanations_by_kind.jsonl",
}
# What a build writes at the top of its folder, and what `rlt toy init` keeps there (its run record and
# lock): anything else there means the folder is not ours.
_OWN_ENTRIES = {MANIFEST, RUN_INFO, LOCK, *(path.split("/")[0] for path in FILES.values())}


class ToyWorldError(UserError):
    """The output folder holds something other than the world asked for."""


@dataclass
class ToyWorldConfig:
    """What a toy world is made of; the task fields are those of :class:`rlt.toy.task.AdditionTask`."""

    operands: int = field(default=3, metadata={"help": "Numbers added in each question (at least 2)."})
    low: int = field(default=50, metadata={
        "help": "Smallest operand. From 50 (to 99), every running sum has three digits, so each step of an "
                "explanation sits at the same place and copying an operand is a lookup at a fixed offset."})
    high: int = field(default=99, metadata={"help": "Largest operand."})
    operators: str = field(default="+", metadata={
        "help": "Signs between the operands, one for all or one per gap: '+-' asks a+b-c (a transfer task "
                "in the same frame, for a base pretrained with pretrain_operators '+-')."})
    n_train: int = field(default=20000, metadata={"help": "Training questions."})
    n_heldout: int = field(default=500, metadata={"help": "Held-out questions (never among the training ones)."})
    model_size: str = field(default="tiny", metadata={"help": f"Base model preset: {', '.join(MODEL_SIZES)}."})
    pretrain_max_steps: int = field(default=3000, metadata={
        "help": "Most steps of pretraining the base model on addition facts (0: leave it untrained)."})
    pretrain_target_fact_accuracy: float = field(default=0.98, metadata={
        "help": "Pretraining stops once the base model completes this share of fresh addition facts."})
    pretrain_learning_rate: float = field(default=5e-3, metadata={"help": "Learning rate of that pretraining."})
    pretrain_operators: str = field(default="+", metadata={
        "help": "Facts the base model is pretrained on: '+' (additions) or '+-' (additions and subtractions)."})
    base_model: str | None = field(default=None, metadata={
        "help": "A toy base model already pretrained (such as another world's base_model folder) to copy instead "
                "of building and pretraining one; model_size and the pretrain_* fields then do not apply."})
    seed: int = field(default=0, metadata={"help": "Seeds the splits, the corruptions and the initial weights."})

    def __post_init__(self) -> None:
        if self.model_size not in MODEL_SIZES:
            raise ValueError(f"model_size must be one of {', '.join(MODEL_SIZES)}, got {self.model_size!r}")
        if self.pretrain_max_steps < 0:
            raise ValueError(f"pretrain_max_steps must be non-negative, got {self.pretrain_max_steps}")
        if self.pretrain_operators not in ("+", "+-"):
            raise ValueError(f"pretrain_operators must be '+' or '+-', got {self.pretrain_operators!r}")
        if not self.base_model and set(self.operators) - set(self.pretrain_operators):
            raise ValueError(f"operators {self.operators!r} ask what a base pretrained on {self.pretrain_operators!r} "
                             "facts does not know: pretrain_operators '+-', or a base_model that knows it")
        # Invalid task fields or split sizes fail here, when the config is made, not midway through a build
        self.task().check_split_sizes(self.n_train, self.n_heldout)

    def task(self) -> AdditionTask:
        return AdditionTask(operands=self.operands, low=self.low, high=self.high, seed=self.seed,
                            operators=self.operators)

    def pretraining(self) -> PretrainingConfig:
        return PretrainingConfig(max_steps=self.pretrain_max_steps, learning_rate=self.pretrain_learning_rate,
                                 target_fact_accuracy=self.pretrain_target_fact_accuracy, seed=self.seed,
                                 operators=self.pretrain_operators)


@dataclass(frozen=True)
class ToyWorld:
    """A world's folder: the path of every file, and the config it is built from (None: a world only read)."""

    root: Path
    config: ToyWorldConfig | None = None

    def _path(self, name: str) -> Path:
        return self.root / FILES[name]

    @property
    def manifest(self) -> Path:
        return self.root / MANIFEST

    @property
    def base_model(self) -> Path:
        return self._path("base_model")

    @property
    def train(self) -> Path:
        return self._path("train")

    @property
    def heldout(self) -> Path:
        return self._path("heldout")

    @property
    def teacher_warmup(self) -> Path:
        return self._path("teacher_warmup")

    @property
    def answer_only(self) -> Path:
        return self._path("answer_only")

    @property
    def explanations_by_kind(self) -> Path:
        return self._path("explanations_by_kind")

    def is_complete(self) -> bool:
        return self.manifest.is_file() and all(self._path(name).exists() for name in FILES)


def _rng(config: ToyWorldConfig, purpose: str) -> random.Random:
    """A generator per purpose, so that changing how one file is drawn leaves the others unchanged."""
    return random.Random(f"rlt-toy-world:{purpose}:{config.seed}")


def explanations_by_kind_rows(heldout: Sequence[Example], rng: random.Random) -> list[dict]:
    """For each question, one row per kind (gold, then every corruption), in that order."""
    rows = []
    for example in heldout:
        numbers = numbers_of(example.question)
        for kind in (GOLD, *CORRUPTIONS):
            explanation = gold_explanation(numbers) if kind == GOLD else corrupt(numbers, kind, rng)
            rows.append({"question": example.question, "solution": example.solution,
                         "explanation": explanation, "kind": kind})
    return rows


def _is_own(name: str) -> bool:
    """Whether a build writes ``name`` at the top of its folder (a ``.world.json.*.tmp`` is the manifest
    of a killed build, caught while being written)."""
    return name in _OWN_ENTRIES or name.startswith(f".{MANIFEST}.")


def _existing(root: Path, config: ToyWorldConfig) -> ToyWorld | None:
    """The world already in ``root`` if it is the one asked for; None if ``root`` is free to build in."""
    manifest = root / MANIFEST
    if manifest.is_file():
        recorded = json.loads(manifest.read_text())
        found = recorded["config"]
        wanted = asdict(config)
        if found != wanted:
            changes = ", ".join(f"{k}: {found.get(k)!r} there, {v!r} asked" for k, v in wanted.items()
                                if found.get(k) != v)
            raise ToyWorldError(f"{root} holds a toy world with another config ({changes}); "
                                "choose another folder or delete it")
        if recorded.get("warmup_mix") != WARMUP_MIX:
            raise ToyWorldError(f"{root} holds a toy world whose teacher warm-up rows were drawn with another "
                                f"mix (an earlier rlt; now {WARMUP_MIX}); choose another folder or delete it")
        world = ToyWorld(root, config)
        if world.is_complete():
            return world
        logger.warning("%s: toy world with files missing; rebuilding it", root)
        return None
    strangers = sorted(p.name for p in root.iterdir() if not _is_own(p.name)) if root.is_dir() else []
    if strangers:
        raise ToyWorldError(f"{root} is not empty and holds no toy world ({', '.join(strangers[:5])}); "
                            "choose an empty or new folder")
    return None  # new, empty, or an interrupted build (only our own files): build over it


def build_toy_world(output: str | Path, config: ToyWorldConfig | None = None) -> ToyWorld:
    """Build the world ``config`` describes in ``output``, or return it if it is already there.

    Raises :class:`ToyWorldError` when ``output`` holds a world with another config, or files that are
    not a toy world's. ``world.json`` is written last: a folder without it is an unfinished build,
    which a new call completes.
    """
    config = config or ToyWorldConfig()
    root = Path(output)
    world = _existing(root, config)
    if world is not None:
        logger.info("%s already holds this toy world; nothing to do", root)
        return world
    world = ToyWorld(root, config)
    if config.base_model:
        check_base_model(config.base_model)
    train, heldout = config.task().splits(config.n_train, config.n_heldout)
    root.mkdir(parents=True, exist_ok=True)

    if config.base_model:
        pretraining = _copy_base_model(Path(config.base_model), world.base_model)
    else:
        pretraining = _build_base_model(config, world.base_model)

    warmup = teacher_warmup_rows(train, WARMUP_MIX, rng=_rng(config, "warmup"))
    by_kind = explanations_by_kind_rows(heldout[:KIND_QUESTIONS], _rng(config, "explanations"))
    data = {
        "train": [e.to_dict() for e in train],
        "heldout": [e.to_dict() for e in heldout],
        "teacher_warmup": warmup,
        "answer_only": answer_only_rows(train),
        "explanations_by_kind": by_kind,
    }
    for name, rows in data.items():
        write_jsonl(world._path(name), rows)
        logger.info("wrote %s: %d rows", world._path(name), len(rows))

    manifest = {"config": asdict(config), "warmup_mix": WARMUP_MIX,
                "pretraining": pretraining and asdict(pretraining),
                "files": FILES, "rows": {name: len(rows) for name, rows in data.items()}}
    write_json(world.manifest, manifest)
    logger.info("wrote %s", world.manifest)
    return world


def _build_base_model(config: ToyWorldConfig, destination: Path) -> PretrainingResult:
    """A fresh base model, pretrained on addition facts unless ``pretrain_max_steps`` is 0, saved in ``destination``."""
    tokenizer = build_char_tokenizer()
    model = build_causal_lm(tokenizer, config.model_size, seed=config.seed)
    if config.pretrain_max_steps:
        logger.info("pretraining the base model on '%s' facts (at most %d steps)", config.pretrain_operators,
                    config.pretrain_max_steps)
        pretraining = pretrain(model, tokenizer, config.task(), config.pretraining())
    else:
        pretraining = PretrainingResult(0, fact_accuracy(model, tokenizer, config.task(), seed=config.seed,
                                                         operators=config.pretrain_operators))
    save_model_and_tokenizer(model, tokenizer, destination)
    logger.info("wrote %s: %s Qwen2 model (%d parameters, %d pretraining steps, completes %.1f%% of fresh "
                "'%s' facts), char tokenizer (%d tokens)", destination, config.model_size, model.num_parameters(),
                pretraining.steps, 100 * pretraining.fact_accuracy, config.pretrain_operators, len(tokenizer))
    return pretraining


def check_base_model(source: str | Path) -> None:
    """A base model to copy must be a model folder with the toy char tokenizer: the task's text must be
    tokenised as the world's data expects."""
    if not (Path(source) / "config.json").is_file():
        raise ToyWorldError(f"base_model {source} is not a model folder (no config.json)")
    if load_tokenizer(str(source), "base_model").get_vocab() != build_char_tokenizer().get_vocab():
        raise ToyWorldError(f"base_model {source} does not have the toy char tokenizer; use a toy world's base_model")


def _copy_base_model(source: Path, destination: Path) -> PretrainingResult | None:
    """Copy a pretrained base model (checked by :func:`check_base_model`) into ``destination``; its pretraining
    record, if ``source`` is a world's base model (None otherwise)."""
    shutil.copytree(source, destination, dirs_exist_ok=True)
    logger.info("copied the base model %s to %s", source, destination)
    source_manifest = source.parent / MANIFEST
    if source.name != FILES["base_model"] or not source_manifest.is_file():
        return None
    pretraining = json.loads(source_manifest.read_text()).get("pretraining")
    return PretrainingResult(**pretraining) if pretraining else None


__all__ = ["ToyWorld", "ToyWorldConfig", "ToyWorldError", "build_toy_world", "check_base_model",
           "explanations_by_kind_rows"]
