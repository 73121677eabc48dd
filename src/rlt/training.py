"""What every trainer of rlt shares: its run folder, its metrics file, training and saving.

The four training commands (``teacher-sft``, ``student-sft``, ``teacher-rl``, ``student-rl``) build a
TRL trainer and hand it to :func:`run_training`, which keeps the run-folder contract
(:mod:`rlt.run_folder`) for trainers:

* the settings a run learns from (:func:`training_settings`: all but how it is logged, saved or spread
  over devices, and its length) identify it; checkpoints of other settings are never resumed;
* a finished run started again with the same settings and length does nothing;
* ``--resume true`` continues from the run's newest whole checkpoint (a run may be lengthened:
  ``--max_steps`` larger than before), never from one past the steps asked for;
* without ``--resume``, a folder holding this run's checkpoints is refused rather than trained over.

With several processes (torchrun, accelerate), the main process claims the folder and tells the others
what it decided, so that all start, resume or stop together. ``metrics.jsonl`` is the trainer's log
history (:class:`MetricsFile`): a resumed run rewrites it from its checkpoint's history, so each step
appears once.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transformers import Trainer, TrainerCallback, TrainingArguments
from transformers.trainer import TRAINER_STATE_NAME
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR
from transformers.utils import CONFIG_NAME

from rlt.data import read_jsonl, write_jsonl
from rlt.errors import UserError
from rlt.run_folder import SPEED_ONLY, Claim, OutputFile, RunFolder, settings

logger = logging.getLogger(__name__)

# TrainingArguments (and TRL config) fields that change how a run is logged, evaluated, saved, pushed or
# spread over devices, not what it learns: a run resumed with other values of these is the same run.
BOOKKEEPING = frozenset({
    "logging_strategy", "logging_steps", "logging_first_step", "log_on_each_node", "logging_nan_inf_filter",
    "include_num_input_tokens_seen", "log_level", "log_level_replica", "disable_tqdm", "report_to", "run_name",
    "project", "trackio_space_id", "trackio_bucket_id", "trackio_static_space_id", "eval_strategy", "eval_steps",
    "eval_delay", "per_device_eval_batch_size", "prediction_loss_only", "eval_on_start", "eval_do_concat_batches",
    "eval_use_gather_object", "eval_accumulation_steps", "include_for_metrics", "batch_eval_metrics",
    "save_only_model", "save_strategy", "save_steps", "save_on_each_node", "save_total_limit",
    "enable_jit_checkpoint", "push_to_hub", "hub_token", "hub_private_repo", "hub_model_id", "hub_strategy",
    "hub_always_push", "hub_revision", "dataloader_num_workers", "dataloader_pin_memory",
    "dataloader_persistent_workers", "dataloader_prefetch_factor", "dataloader_multiprocessing_context",
    "skip_memory_metrics", "do_train", "do_eval", "do_predict", "resume_from_checkpoint", "local_rank",
    "ddp_timeout", "debug", "torch_empty_cache_steps", "gradient_checkpointing", "gradient_checkpointing_kwargs",
    "activation_checkpointing", "activation_checkpointing_kwargs", "deepspeed", "fsdp", "fsdp_config",
    "accelerator_config", "parallelism_config", "ddp_find_unused_parameters", "ddp_bucket_cap_mb",
    "ddp_broadcast_buffers", "ddp_static_graph", "ddp_backend", "dataset_num_proc", "log_completions",
    "log_multimodal", "num_completions_to_print", "log_unique_prompts", "log_completions_hub_repo",
    "vllm_server_base_url", "vllm_server_host", "vllm_server_port", "vllm_server_timeout", "vllm_group_port",
    "vllm_gpu_memory_utilization", "vllm_enable_sleep_mode", "vllm_tensor_parallel_size",
    "ds3_gather_for_generation", "num_generations_eval",
})
# How long a run trains: a run may be continued for longer (--resume true with a larger --max_steps).
BUDGET = ("max_steps", "num_train_epochs")


@dataclass(frozen=True)
class TrainingOutputs:
    """The files of a trainer's run folder: the model (saved in the folder itself), its checkpoints, the
    metrics, and (GRPO) samples of completions with their rewards."""

    folder: Path
    metrics = OutputFile("metrics.jsonl")
    completions = OutputFile("completions")

    @property
    def model(self) -> Path:
        return self.folder

    def read_metrics(self) -> list[dict]:
        return read_jsonl(self.metrics) if self.metrics.is_file() else []

    def checkpoints(self) -> list[Path]:
        """Every ``checkpoint-N`` folder, oldest first (whole or not)."""
        if not self.folder.is_dir():
            return []
        found = [(int(f.name.split("-")[1]), f) for f in self.folder.glob(f"{PREFIX_CHECKPOINT_DIR}-*")
                 if f.is_dir() and f.name.split("-")[1].isdigit()]
        return [folder for _, folder in sorted(found)]

    def last_checkpoint(self) -> Path | None:
        """The newest complete checkpoint.

        A run killed while saving leaves a folder without its trainer state, which the Trainer writes last;
        transformers' ``get_last_checkpoint`` would pick that folder and the resume would crash, so it is
        skipped here (with a warning) for the newest checkpoint that was saved whole.
        """
        for folder in reversed(self.checkpoints()):
            if (folder / TRAINER_STATE_NAME).is_file():
                return folder
            logger.warning("skipping %s: it has no %s (the run was killed while saving it)", folder, TRAINER_STATE_NAME)
        return None


def checkpoint_step(checkpoint: Path) -> int:
    return int(json.loads((checkpoint / TRAINER_STATE_NAME).read_text())["global_step"])


class MetricsFile(TrainerCallback):
    """``metrics.jsonl``: the trainer's log history, one logged dict (with its step) per line.

    A plain file next to the checkpoints: readable while the run goes on, and plotted by the demo. At the
    start of training it is rewritten from the history the trainer starts with (none for a new run, the
    checkpoint's for a resumed one), so the steps a killed run logged after its last checkpoint, which the
    resumed run logs again, appear once.
    """

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            write_jsonl(TrainingOutputs(Path(args.output_dir)).metrics, state.log_history)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and state.log_history:
            with TrainingOutputs(Path(args.output_dir)).metrics.open("a", encoding="utf-8") as f:
                f.write(json.dumps(state.log_history[-1]) + "\n")


def training_settings(sources: dict[str, str | None], training: TrainingArguments, **groups: Any) -> dict:
    """What a training run learns from: its models and data, and every setting but :data:`BOOKKEEPING`,
    :data:`BUDGET` and the speed-only ones (:func:`rlt.run_folder.settings`)."""
    return settings(sources, ignore=SPEED_ONLY | BOOKKEEPING | frozenset(BUDGET), training=training.to_dict(),
                    **groups)


def check_training_arguments(training: TrainingArguments) -> None:
    """Refuse settings the Trainer would take and then fail on, or run without training at all."""
    for name in ("per_device_train_batch_size", "gradient_accumulation_steps"):
        if getattr(training, name) < 1:
            raise UserError(f"{name} must be at least 1, got {getattr(training, name)}")
    if training.max_steps <= 0 and training.num_train_epochs <= 0:
        raise UserError(f"nothing to train: max_steps={training.max_steps} and "
                        f"num_train_epochs={training.num_train_epochs}; set one of them above 0")


@dataclass(frozen=True)
class _Start:
    """What the main process decided for every process: train (from ``checkpoint``), or stop."""

    checkpoint: str | None = None
    finished: bool = False
    refusal: str | None = None


def _decide(claim: Claim, outputs: TrainingOutputs, training: TrainingArguments, resume: bool) -> _Start:
    """Train from scratch, from the run's own checkpoint, or not at all (see the module docstring)."""
    if claim.finished:
        return _Start(finished=True)
    if claim.previous is None:  # a new folder, or one --overwrite cleared
        return _Start()
    checkpoint = outputs.last_checkpoint()
    if not resume:
        if checkpoint is None and claim.previous.get("status") != "finished":
            return _Start()  # killed before its first checkpoint: nothing to lose
        state = "finished" if claim.previous.get("status") == "finished" else "stopped"
        newest = f", newest checkpoint {checkpoint.name}" if checkpoint else ""
        raise UserError(f"{outputs.folder} holds this run, {state} ({_budget(claim.previous)}{newest}): "
                        "--resume true continues it, --overwrite true deletes it and starts again")
    if checkpoint is None:
        logger.info("resuming from the start (no checkpoint yet)")
        return _Start()
    step = checkpoint_step(checkpoint)
    if 0 < training.max_steps < step:
        raise UserError(f"--resume true: {checkpoint.name} is at step {step}, past max_steps={training.max_steps}; "
                        "ask for more steps, or --overwrite true to start again")
    logger.info("resuming from %s", checkpoint)
    return _Start(checkpoint=str(checkpoint))


def _budget(record: dict) -> str:
    """How long the recorded run was asked to train, as its flag says it."""
    training = record.get("config", {}).get("training", {})
    max_steps = training.get("max_steps", -1)
    return f"max_steps={max_steps}" if max_steps > 0 else f"num_train_epochs={training.get('num_train_epochs')}"


def _agree(start: _Start | None, training: TrainingArguments) -> _Start:
    """The main process's decision, for every process of a distributed run."""
    from accelerate.utils import broadcast_object_list

    if training.world_size == 1:
        return start
    box = [start]
    broadcast_object_list(box, from_process=0)
    return box[0]


def run_training(command: str, training: TrainingArguments, work: dict, *, resume: bool, overwrite: bool,
                 config: dict[str, Any], build: Callable[[], Trainer]) -> Trainer | None:
    """Claim ``training.output_dir`` for this run, build the trainer (weights load only now), train
    (from the run's own newest checkpoint with ``resume``), save the model, and mark the run finished.
    Returns the trainer; None if the folder held this run, finished, already."""
    outputs = TrainingOutputs(Path(training.output_dir))
    budget = {name: getattr(training, name) for name in BUDGET}
    main = training.process_index == 0  # the first process of all (of every node)
    with ExitStack() as held:
        start = claim = None
        if main:  # the others wait for its decision, refusals included, so that every process acts alike
            try:
                claim = held.enter_context(RunFolder(outputs.folder, command).claim(
                    work, budget, overwrite=overwrite, expected=(outputs.model / CONFIG_NAME,)))
                start = _decide(claim, outputs, training, resume)
            except UserError as error:
                start = _Start(refusal=str(error))
        start = _agree(start, training)
        if start.refusal:
            raise UserError(start.refusal)
        if start.finished:
            logger.info("%s holds this run, finished: nothing to do (--overwrite true trains again)", outputs.folder)
            return None
        if claim is not None:
            claim.start(**config)
        trainer = build()
        trainer.add_callback(MetricsFile())
        trainer.train(resume_from_checkpoint=start.checkpoint)
        trainer.save_model(str(outputs.model))
        if claim is not None:
            claim.finish(global_step=trainer.state.global_step)
    return trainer


__all__ = ["BOOKKEEPING", "BUDGET", "MetricsFile", "TrainingOutputs", "check_training_arguments", "run_training",
           "training_settings"]
